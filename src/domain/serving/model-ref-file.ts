// A model reference kept in a file (in Kubernetes: a ConfigMap key mounted as a volume), read at start
// and polled so that editing the ConfigMap swaps a running service's model without a pod restart.
import { readFile } from "node:fs/promises";
import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Logger } from "../../platform/telemetry/index.js";

/**
 * Reads a model reference (a path or `<lineage>@<version>`) from `path`: the first line that is not
 * empty and not a `#` comment, trimmed. A missing file or one with no reference is INVALID_ARGUMENT,
 * so a bad mount stops the service at start with a clear message.
 */
export async function readModelRefFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new AutodidactError(`cannot read model reference file ${path}`, Code.InvalidArgument, { cause });
  }
  const ref = text
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l !== "" && !l.startsWith("#"));
  if (ref === undefined) throw new AutodidactError(`model reference file ${path} holds no reference`, Code.InvalidArgument);
  return ref;
}

/** Options of {@link watchModelRefFile}. */
export interface WatchModelRefFileOptions {
  readonly path: string;
  /** The reference already being served (read at start); only a different one triggers `onChange`. */
  readonly initial: string;
  /** Poll interval in ms (default 2000). Polling, not fs.watch: kubelet replaces ConfigMap files by symlink swap. */
  readonly intervalMs?: number;
  /** Swaps to `ref`; a rejection is logged and the file is not retried until its content changes again. */
  readonly onChange: (ref: string) => Promise<unknown>;
  readonly logger?: Logger;
}

/**
 * Polls a model reference file and calls `onChange` once per new reference, one call at a time (a
 * change seen while a swap runs is applied after it). An unreadable or empty file is logged and the
 * current model keeps serving. Returns a stop function that waits for a running swap to finish.
 */
export function watchModelRefFile(options: WatchModelRefFileOptions): () => Promise<void> {
  const { path, onChange, logger } = options;
  let seen = options.initial;
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let busy = false;
  const tick = async (): Promise<void> => {
    let ref: string;
    try {
      ref = await readModelRefFile(path);
    } catch (err) {
      if (seen !== "") logger?.warn("model reference file unreadable; keeping the current model", { path, error: String(err) });
      seen = "";
      return;
    }
    if (ref === seen || stopped) return;
    seen = ref;
    logger?.info("model reference changed; swapping", { path, ref });
    try {
      await onChange(ref);
      logger?.info("model swapped from reference file", { path, ref });
    } catch (err) {
      logger?.error("model swap from reference file failed; the previous model keeps serving", { path, ref, error: String(err) });
    }
  };
  const timer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    running = tick().finally(() => {
      busy = false;
    });
  }, options.intervalMs ?? 2000);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
