import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { TransformerConfig } from "./config.js";
import { paramNames, parameterSpecs } from "./params.js";

/**
 * Where LoRA adapters attach, named as Hugging Face/PEFT name the modules. For our models and the
 * Llama family a site is one linear (`model.layers.3.self_attn.q_proj`). GPT-2's `c_attn` is ONE
 * Conv1D producing q, k and v, so its site covers three engine weights with one adapter pair
 * (B: [3D, r]) — exactly what `peft` trains and saves for GPT-2.
 */
export interface LoraSite {
  /** Module path as PEFT names it (its keys are `base_model.model.<module>.lora_A.weight`). */
  readonly module: string;
  /** Engine weights the site's output covers, in output-row order (3 for GPT-2's c_attn). */
  readonly bases: readonly string[];
  /** Output rows of each base. */
  readonly outs: readonly number[];
  readonly in: number;
  /** PEFT adapter tensor names. */
  readonly a: string;
  readonly b: string;
}

/** Whether a PEFT `target_modules` entry selects a module path (exact or dotted suffix, as PEFT matches). */
export function targetMatches(target: string, module: string): boolean {
  return module === target || module.endsWith(`.${target}`);
}

/** PEFT tensor names of the adapter pair on a module path. */
export function peftKeys(module: string): { a: string; b: string } {
  return { a: `base_model.model.${module}.lora_A.weight`, b: `base_model.model.${module}.lora_B.weight` };
}

/** Every LoRA-able site of a config (all linears), in parameter order. */
export function allLoraSites(c: TransformerConfig): LoraSite[] {
  const specs = parameterSpecs(c);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const site = (module: string, bases: string[]): LoraSite => {
    const shapes = bases.map((n) => byName.get(n)?.shape as readonly number[]);
    return { module, bases, outs: shapes.map((s) => s[0] as number), in: shapes[0]?.[1] as number, ...peftKeys(module) };
  };
  if (c.family === "gpt2") {
    const out: LoraSite[] = [];
    for (let i = 0; i < c.numLayers; i++) {
      const h = `transformer.h.${i}`;
      out.push(site(`${h}.attn.c_attn`, (["q_proj", "k_proj", "v_proj"] as const).map((m) => paramNames.attn(i, m))));
      out.push(site(`${h}.attn.c_proj`, [paramNames.attn(i, "o_proj")]));
      out.push(site(`${h}.mlp.c_fc`, [paramNames.mlp(i, "up_proj")]));
      out.push(site(`${h}.mlp.c_proj`, [paramNames.mlp(i, "down_proj")]));
    }
    return out;
  }
  return specs.filter((s) => s.kind === "linear").map((s) => site(s.name.replace(/\.weight$/, ""), [s.name]));
}

/**
 * Engine (Llama-style) module names accepted as targets on GPT-2 too, so family-blind callers
 * (the trainer's default q_proj, v_proj) work: q/k/v select the packed c_attn.
 */
export const GPT2_TARGET_ALIASES: Readonly<Record<string, string>> = {
  q_proj: "attn.c_attn",
  k_proj: "attn.c_attn",
  v_proj: "attn.c_attn",
  o_proj: "attn.c_proj",
  up_proj: "mlp.c_fc",
  down_proj: "mlp.c_proj",
};

/**
 * The `target_modules` to record for family-blind targets, as PEFT matches them on this family: on
 * GPT-2 the aliases become its module names (q_proj and v_proj both `attn.c_attn`, once), so an
 * adapter config written with them selects the same sites in PEFT; other families keep their names.
 */
export function peftTargetModules(c: TransformerConfig, targetModules: readonly string[]): string[] {
  if (c.family !== "gpt2") return [...targetModules];
  return [...new Set(targetModules.map((t) => GPT2_TARGET_ALIASES[t] ?? t))];
}

/** The sites `targetModules` select; InvalidArgument when none match. */
export function loraSites(c: TransformerConfig, targetModules: readonly string[]): LoraSite[] {
  const targets = c.family === "gpt2" ? targetModules.map((t) => GPT2_TARGET_ALIASES[t] ?? t) : targetModules;
  const out = allLoraSites(c).filter((s) => targets.some((t) => targetMatches(t, s.module)));
  if (out.length === 0) throw new AutodidactError(`LoRA target modules [${targetModules.join(",")}] match no linear`, Code.InvalidArgument);
  return out;
}
