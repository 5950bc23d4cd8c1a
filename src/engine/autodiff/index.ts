// Reverse-mode differentiation of engine IR graphs into ONNX training graphs.
export type { GradientGraph, GradientOptions } from "./gradient.js";
export { buildGradientGraph, buildGradientModel } from "./gradient.js";
export type { GradCheckOptions, GradCheckResult } from "./gradcheck.js";
export { checkGradients } from "./gradcheck.js";
export type { GradientRule, RuleContext } from "./rules.js";
export { NON_DIFFERENTIABLE, RULES } from "./rules.js";
export type { EmitOptions } from "./emitter.js";
export { GraphEmitter } from "./emitter.js";
