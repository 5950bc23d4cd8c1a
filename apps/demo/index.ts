export { checkDemoConfig, defaultDemoConfig, lineageName, overrideRecipe, parseOverride, quickDemoRecipe, resolveDemoConfig } from "./config.js";
export type { DemoConfig } from "./config.js";
export { ensureBaseModels } from "./base-models.js";
export { demoMembers, runDemo, VARIANTS } from "./run-demo.js";
export type { DemoRunResult, RunDemoOptions, RunVariant } from "./run-demo.js";
export { demoCommand, demoOptions, selectVariants } from "./demo-command.js";
export { createProgressBar, pct } from "./progress.js";
export type { DemoOutput, ProgressBar } from "./progress.js";
