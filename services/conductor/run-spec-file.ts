// Reading a run spec from a file: JSON, or YAML when the `yaml` package is installed (it is a
// development dependency today: a production image reads JSON; see the conductor's README). The
// spec's fields use the protobuf JSON names (`proposalsPerRound` or `proposals_per_round`, enums by
// name such as `KIND_AGREEMENT`).
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { readFile } from "node:fs/promises";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { RunSpecSchema, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";

/** Parses YAML text with the optional `yaml` package; FailedPrecondition when it is not installed. */
async function parseYaml(text: string, source: string): Promise<unknown> {
  let yaml: { parse(text: string): unknown };
  try {
    yaml = (await import("yaml")) as { parse(text: string): unknown };
  } catch (cause) {
    throw new AutodidactError(`${source}: YAML needs the "yaml" package, which this installation lacks; write the run spec as JSON`, Code.FailedPrecondition, { cause });
  }
  return yaml.parse(text);
}

/** A run spec from JSON or YAML text (not yet checked: see normalizeRunSpec). */
export async function parseRunSpec(text: string, source: string): Promise<RunSpec> {
  let value: unknown;
  const trimmed = text.trimStart();
  try {
    value = trimmed.startsWith("{") ? JSON.parse(text) : await parseYaml(text, source);
  } catch (cause) {
    if (cause instanceof AutodidactError) throw cause;
    throw new AutodidactError(`${source} is not valid ${trimmed.startsWith("{") ? "JSON" : "YAML"}: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new AutodidactError(`${source} must hold one run spec (an object)`, Code.InvalidArgument);
  try {
    return fromJson(RunSpecSchema, value as JsonValue);
  } catch (cause) {
    throw new AutodidactError(`${source} is not a run spec: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
}

/** Reads a run spec file. */
export async function readRunSpecFile(path: string): Promise<RunSpec> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new AutodidactError(`cannot read run spec ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, Code.InvalidArgument, { cause });
  }
  return parseRunSpec(text, path);
}
