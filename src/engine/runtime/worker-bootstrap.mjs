// Starts a model worker thread: registers tsx so the TypeScript worker module can be imported
// (workers do not inherit the parent's loader hooks reliably), then loads it.
import { register } from "tsx/esm/api";

register();
await import(new URL("./model-worker.ts", import.meta.url).href);
