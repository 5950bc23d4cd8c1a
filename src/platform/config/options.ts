import { AutodidactError, Code } from "../errors/index.js";
import { formatDuration, parseDuration } from "./duration.js";

/** Fields every option kind shares. */
interface OptionBase {
  /** One line shown by `--help`. */
  help: string;
  /** Flag name without dashes; derived from the property name (`grpcPort` → `grpc-port`) when omitted. */
  flag?: string;
  /** One-letter alias (`-p`). */
  short?: string;
  /** Environment variable (`AUTODIDACT_GRPC_PORT`); `false` opts out of a parser-wide env prefix. */
  env?: string | false;
  /** Fails when no value comes from argv, env or a default. */
  required?: boolean;
  /** Left out of `--help` (internal knobs). */
  hidden?: boolean;
}

/** A free-form string, optionally matched against a pattern. */
export interface StringOption extends OptionBase {
  type: "string";
  default?: string;
  pattern?: RegExp;
  /** Placeholder in help (`<url>`). */
  placeholder?: string;
}
/** A safe integer within [min, max]. */
export interface IntOption extends OptionBase {
  type: "int";
  default?: number;
  min?: number;
  max?: number;
}
/** A finite number within [min, max]. */
export interface FloatOption extends OptionBase {
  type: "float";
  default?: number;
  min?: number;
  max?: number;
}
/** A switch: `--x`, `--no-x`, `--x=false`, env `true/false/1/0/yes/no/on/off`. */
export interface BoolOption extends OptionBase {
  type: "bool";
  default?: boolean;
}
/** One of a closed set of words. */
export interface EnumOption<V extends string = string> extends OptionBase {
  type: "enum";
  values: readonly V[];
  default?: V;
}
/** A duration (`500ms`, `2s`, `1m30s`, `1h`; a bare number is milliseconds), parsed to milliseconds. */
export interface DurationOption extends OptionBase {
  type: "duration";
  /** Milliseconds. */
  default?: number;
  min?: number;
  max?: number;
}
/** A list: repeated flags or comma-separated values; argv replaces env, which replaces the default. */
export interface ListOption extends OptionBase {
  type: "list";
  default?: readonly string[];
  /** Allowed items, when the list is of words from a closed set. */
  values?: readonly string[];
}

/** Any option declaration. */
export type OptionSpec = StringOption | IntOption | FloatOption | BoolOption | EnumOption | DurationOption | ListOption;

/** The declared options of a command, by property name. */
export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S extends EnumOption<infer V>
  ? V
  : S extends StringOption
    ? string
    : S extends IntOption | FloatOption | DurationOption
      ? number
      : S extends BoolOption
        ? boolean
        : S extends ListOption
          ? string[]
          : never;

type AlwaysSet<S extends OptionSpec> = S extends BoolOption | ListOption
  ? true
  : S extends { default: unknown }
    ? true
    : S extends { required: true }
      ? true
      : false;

/** The parsed values: options with a default, `required`, bools and lists are never undefined. */
export type OptionValues<T extends OptionSpecs> = {
  [K in keyof T]: AlwaysSet<T[K]> extends true ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

/** Where each value came from, for `config show` style diagnostics. */
export type ValueSource = "argv" | "env" | "default" | "unset";

/** Result of {@link OptionParser.parse}. */
export interface ParseResult<T extends OptionSpecs> {
  values: OptionValues<T>;
  sources: Record<keyof T, ValueSource>;
  /** Arguments that are not options (subcommand arguments, file names). */
  positionals: string[];
  /** True when `-h`/`--help` was given: print {@link OptionParser.help} and exit 0. */
  help: boolean;
}

/** Parser-wide settings. */
export interface ParserSettings {
  /** Derives `env` for every option without one: prefix + upper snake case (`AUTODIDACT_` + `GRPC_PORT`). */
  envPrefix?: string;
  /** Accept arguments that are not options (default true). */
  allowPositionals?: boolean;
}

/** Options for {@link OptionParser.help}. */
export interface HelpOptions {
  /** `autodidact critic [options]` */
  usage?: string;
  /** A paragraph under the usage line. */
  description?: string;
}

/** A declared set of options that parses argv, then env, then defaults. */
export interface OptionParser<T extends OptionSpecs> {
  readonly specs: T;
  /** Parses; throws AutodidactError(InvalidArgument) naming the flag, the value and what is expected. */
  parse(argv: readonly string[], env?: Record<string, string | undefined>): ParseResult<T>;
  /** The `--help` text. */
  help(options?: HelpOptions): string;
}

interface Resolved {
  key: string;
  spec: OptionSpec;
  flag: string;
  env: string | undefined;
}

const kebab = (s: string): string => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
const upperSnake = (s: string): string => kebab(s).replace(/-/g, "_").toUpperCase();

function expectation(spec: OptionSpec): string {
  const range = (min?: number, max?: number, fmt: (n: number) => string = String): string =>
    min !== undefined && max !== undefined
      ? ` between ${fmt(min)} and ${fmt(max)}`
      : min !== undefined
        ? ` >= ${fmt(min)}`
        : max !== undefined
          ? ` <= ${fmt(max)}`
          : "";
  switch (spec.type) {
    case "string":
      return spec.pattern !== undefined ? `a string matching ${String(spec.pattern)}` : "a string";
    case "int":
      return `an integer${range(spec.min, spec.max)}`;
    case "float":
      return `a number${range(spec.min, spec.max)}`;
    case "bool":
      return "true or false";
    case "enum":
      return `one of ${spec.values.join(", ")}`;
    case "duration":
      return `a duration like 500ms, 30s, 5m or 1h${range(spec.min, spec.max, formatDuration)}`;
    case "list":
      return spec.values !== undefined ? `a comma-separated list of ${spec.values.join(", ")}` : "a comma-separated list";
  }
}

function placeholder(spec: OptionSpec): string {
  switch (spec.type) {
    case "string":
      return spec.placeholder ?? "<string>";
    case "int":
      return "<int>";
    case "float":
      return "<number>";
    case "bool":
      return "";
    case "enum":
      return `<${spec.values.join("|")}>`;
    case "duration":
      return "<duration>";
    case "list":
      return "<a,b,...>";
  }
}

function invalid(r: Resolved, raw: string, origin: string, why?: string): AutodidactError {
  const shown = raw.length > 80 ? `${raw.slice(0, 77)}...` : raw;
  return new AutodidactError(
    `invalid value "${shown}" for --${r.flag}${origin}: expected ${expectation(r.spec)}${why !== undefined ? ` (${why})` : ""}`,
    Code.InvalidArgument,
    { details: { flag: r.flag, value: raw, expected: expectation(r.spec) } },
  );
}

function convertScalar(r: Resolved, raw: string, origin: string): string | number | boolean {
  const spec = r.spec;
  const inRange = (n: number, min?: number, max?: number): boolean =>
    (min === undefined || n >= min) && (max === undefined || n <= max);
  switch (spec.type) {
    case "string":
      if (spec.pattern !== undefined && !spec.pattern.test(raw)) throw invalid(r, raw, origin);
      return raw;
    case "int": {
      const t = raw.trim();
      const n = Number(t);
      if (!/^[+-]?\d+$/.test(t) || !Number.isSafeInteger(n) || !inRange(n, spec.min, spec.max)) throw invalid(r, raw, origin);
      return n;
    }
    case "float": {
      const t = raw.trim();
      const n = Number(t);
      if (t === "" || !Number.isFinite(n) || !inRange(n, spec.min, spec.max)) throw invalid(r, raw, origin);
      return n;
    }
    case "bool": {
      const t = raw.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(t)) return true;
      if (["false", "0", "no", "off"].includes(t)) return false;
      throw invalid(r, raw, origin);
    }
    case "enum":
      if (!(spec.values as readonly string[]).includes(raw)) throw invalid(r, raw, origin);
      return raw;
    case "duration": {
      const ms = parseDuration(raw);
      if (ms === undefined || !inRange(ms, spec.min, spec.max)) throw invalid(r, raw, origin);
      return ms;
    }
    case "list":
      throw new AutodidactError("internal: list handled elsewhere", Code.Internal);
  }
}

function convertList(r: Resolved, raws: readonly string[], origin: string): string[] {
  const spec = r.spec as ListOption;
  const items = raws.flatMap((raw) => raw.split(",")).map((s) => s.trim()).filter((s) => s !== "");
  if (spec.values !== undefined) {
    const bad = items.find((i) => !spec.values?.includes(i));
    if (bad !== undefined) throw invalid(r, bad, origin, `"${bad}" is not allowed`);
  }
  return items;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] ?? 0;
}

/**
 * Declares the options of a service or CLI command once: their type, default, environment
 * variable, help and validation. Every service reads its settings the same way (argv wins over
 * env, env over default), and a bad value fails at start with a message that says which flag,
 * which value and what was expected, instead of surfacing later as NaN or undefined.
 */
export function defineOptions<const T extends OptionSpecs>(specs: T, settings: ParserSettings = {}): OptionParser<T> {
  const resolved: Resolved[] = Object.entries(specs).map(([key, spec]) => ({
    key,
    spec,
    flag: spec.flag ?? kebab(key),
    env:
      spec.env === false
        ? undefined
        : (spec.env ?? (settings.envPrefix !== undefined ? `${settings.envPrefix}${upperSnake(key)}` : undefined)),
  }));
  const byFlag = new Map<string, Resolved>();
  const byShort = new Map<string, Resolved>();
  for (const r of resolved) {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(r.flag)) {
      throw new AutodidactError(`option ${r.key}: invalid flag name "${r.flag}"`, Code.InvalidArgument);
    }
    if (byFlag.has(r.flag) || r.flag === "help") {
      throw new AutodidactError(`option ${r.key}: flag --${r.flag} declared twice`, Code.InvalidArgument);
    }
    byFlag.set(r.flag, r);
    if (r.spec.short !== undefined) {
      if (!/^[A-Za-z]$/.test(r.spec.short) || byShort.has(r.spec.short) || r.spec.short === "h") {
        throw new AutodidactError(`option ${r.key}: invalid or duplicate short flag -${r.spec.short}`, Code.InvalidArgument);
      }
      byShort.set(r.spec.short, r);
    }
  }
  const allowPositionals = settings.allowPositionals ?? true;

  const unknownFlag = (name: string): AutodidactError => {
    let best: string | undefined;
    let bestD = Infinity;
    for (const f of byFlag.keys()) {
      const d = editDistance(name, f);
      if (d < bestD) {
        bestD = d;
        best = f;
      }
    }
    const hint = best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean --${best}?)` : "";
    return new AutodidactError(`unknown option --${name}${hint}; see --help`, Code.InvalidArgument, { details: { flag: name } });
  };

  return {
    specs,
    parse(argv, env = process.env) {
      const fromArgv = new Map<string, string[]>();
      const positionals: string[] = [];
      let help = false;
      const push = (r: Resolved, v: string): void => {
        const prev = fromArgv.get(r.key);
        if (prev !== undefined && r.spec.type !== "list") {
          // Last one wins for scalars, like most CLIs.
          fromArgv.set(r.key, [v]);
        } else {
          fromArgv.set(r.key, [...(prev ?? []), v]);
        }
      };
      for (let i = 0; i < argv.length; i++) {
        const arg = argv[i] ?? "";
        if (arg === "--") {
          positionals.push(...argv.slice(i + 1));
          break;
        }
        if (arg === "--help" || arg === "-h") {
          help = true;
          continue;
        }
        let r: Resolved | undefined;
        let inline: string | undefined;
        let negated = false;
        if (arg.startsWith("--")) {
          const body = arg.slice(2);
          const eq = body.indexOf("=");
          const name = eq >= 0 ? body.slice(0, eq) : body;
          inline = eq >= 0 ? body.slice(eq + 1) : undefined;
          r = byFlag.get(name);
          if (r === undefined && name.startsWith("no-")) {
            const base = byFlag.get(name.slice(3));
            if (base?.spec.type === "bool") {
              r = base;
              negated = true;
            }
          }
          if (r === undefined) throw unknownFlag(name);
          if (negated && inline !== undefined) {
            throw new AutodidactError(`--${name} takes no value`, Code.InvalidArgument, { details: { flag: name } });
          }
        } else if (arg.startsWith("-") && arg.length >= 2 && !/^-\d/.test(arg)) {
          const letter = arg.slice(1, 2);
          r = byShort.get(letter);
          if (r === undefined) {
            throw new AutodidactError(`unknown option -${letter}; see --help`, Code.InvalidArgument, { details: { flag: letter } });
          }
          if (arg.length > 2) inline = arg.slice(2).replace(/^=/, "");
        } else {
          if (!allowPositionals) {
            throw new AutodidactError(`unexpected argument "${arg}"; see --help`, Code.InvalidArgument);
          }
          positionals.push(arg);
          continue;
        }
        if (r.spec.type === "bool") {
          push(r, negated ? "false" : (inline ?? "true"));
          continue;
        }
        if (inline !== undefined) {
          push(r, inline);
          continue;
        }
        const next = argv[i + 1];
        if (next === undefined || (next.startsWith("--") && next.length > 2)) {
          throw new AutodidactError(`option --${r.flag} needs a value: ${expectation(r.spec)}`, Code.InvalidArgument, {
            details: { flag: r.flag, expected: expectation(r.spec) },
          });
        }
        push(r, next);
        i += 1;
      }

      const values: Record<string, unknown> = {};
      const sources: Record<string, ValueSource> = {};
      for (const r of resolved) {
        const a = fromArgv.get(r.key);
        const envRaw = r.env !== undefined ? env[r.env] : undefined;
        if (a !== undefined) {
          values[r.key] =
            r.spec.type === "list" ? convertList(r, a, "") : convertScalar(r, a[a.length - 1] ?? "", "");
          sources[r.key] = "argv";
        } else if (envRaw !== undefined && envRaw !== "") {
          const origin = ` (from environment variable ${r.env ?? ""})`;
          values[r.key] = r.spec.type === "list" ? convertList(r, [envRaw], origin) : convertScalar(r, envRaw, origin);
          sources[r.key] = "env";
        } else if (r.spec.default !== undefined) {
          values[r.key] = r.spec.type === "list" ? [...(r.spec.default as readonly string[])] : r.spec.default;
          sources[r.key] = "default";
        } else {
          values[r.key] = r.spec.type === "bool" ? false : r.spec.type === "list" ? [] : undefined;
          sources[r.key] = "unset";
          if (r.spec.required === true && !help) {
            throw new AutodidactError(
              `missing required option --${r.flag}${r.env !== undefined ? ` (or environment variable ${r.env})` : ""}: ` +
                `expected ${expectation(r.spec)}`,
              Code.InvalidArgument,
              { details: { flag: r.flag } },
            );
          }
        }
      }
      return {
        values: values as OptionValues<T>,
        sources: sources as Record<keyof T, ValueSource>,
        positionals,
        help,
      };
    },
    help(options = {}) {
      const lines: string[] = [];
      if (options.usage !== undefined) lines.push(`Usage: ${options.usage}`, "");
      if (options.description !== undefined) lines.push(options.description, "");
      lines.push("Options:");
      const rows: Array<[string, string]> = [];
      for (const r of resolved) {
        if (r.spec.hidden === true) continue;
        const ph = placeholder(r.spec);
        const left = `${r.spec.short !== undefined ? `-${r.spec.short}, ` : "    "}--${r.flag}${
          r.spec.type === "bool" ? `, --no-${r.flag}` : ""
        }${ph !== "" ? ` ${ph}` : ""}`;
        const extras: string[] = [];
        if (r.spec.type === "int" || r.spec.type === "float") {
          if (r.spec.min !== undefined || r.spec.max !== undefined) extras.push(`range: ${r.spec.min ?? "-inf"}..${r.spec.max ?? "inf"}`);
        }
        if (r.spec.required === true) extras.push("required");
        if (r.spec.default !== undefined) {
          const d =
            r.spec.type === "duration"
              ? formatDuration(r.spec.default)
              : r.spec.type === "list"
                ? r.spec.default.join(",")
                : String(r.spec.default);
          extras.push(`default: ${d}`);
        }
        if (r.env !== undefined) extras.push(`env: ${r.env}`);
        rows.push([left, `${r.spec.help}${extras.length > 0 ? ` [${extras.join("; ")}]` : ""}`]);
      }
      rows.push(["-h, --help", "show this help"]);
      const width = Math.min(40, Math.max(...rows.map(([l]) => l.length)));
      for (const [left, right] of rows) {
        lines.push(left.length > width ? `  ${left}\n  ${" ".repeat(width)}  ${right}` : `  ${left.padEnd(width)}  ${right}`);
      }
      return `${lines.join("\n")}\n`;
    },
  };
}
