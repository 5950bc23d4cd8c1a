// Reading a run spec from a file: JSON or YAML. The spec's fields use the protobuf JSON names
// (`proposalsPerRound` or `proposals_per_round`, enums by name such as `KIND_AGREEMENT`).
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { readFile } from "node:fs/promises";
import { parse as parseYaml } from "yaml";
import { AutodidactError, Code } from "../../src/platform/errors/index.js";
import { RunSpecSchema, type RunSpec } from "../../src/gen/autodidact/v1/conductor_pb.js";

/** A run spec from JSON or YAML text (not yet checked: see normalizeRunSpec). */
export async function parseRunSpec(text: string, source: string): Promise<RunSpec> {
  let value: unknown;
  const trimmed = text.trimStart();
  try {
    value = trimmed.startsWith("{") ? JSON.parse(text) : parseYaml(text);
  } catch (cause) {
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
