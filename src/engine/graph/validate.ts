import { AutodidactError, Code } from "../../errors/index.js";
import type { Graph, ValueInfo } from "./ir.js";
import { broadcastShapes, fmt, matMulShape } from "./shape.js";

/** Ops whose inputs must share one element type (cheap dtype check). */
const SAME_DTYPE_OPS = new Set(["Add", "Sub", "Mul", "Div", "MatMul", "Concat", "Max", "Min", "Sum"]);
/** Binary ops with numpy broadcasting (cheap shape check). */
const BROADCAST_OPS = new Set(["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Where"]);

/**
 * Lists every structural problem of a graph: duplicate names, inputs used before they are
 * defined (which also catches dangling names and non-topological order), undefined graph outputs,
 * initializers whose data does not match their dims, and dtype clashes on same-type ops.
 * Returning all issues at once makes a broken generated graph easy to debug.
 */
export function graphIssues(graph: Graph): string[] {
  const issues: string[] = [];
  const defined = new Map<string, ValueInfo | null>();
  const define = (name: string, v: ValueInfo | null, what: string): void => {
    if (defined.has(name)) issues.push(`duplicate value "${name}" (${what})`);
    defined.set(name, v);
  };
  const info = new Map<string, ValueInfo>();
  for (const v of graph.valueInfo) info.set(v.name, v);
  for (const v of graph.inputs) define(v.name, v, "graph input");
  for (const t of graph.initializers) {
    define(t.name, { name: t.name, dtype: t.dtype, shape: t.dims }, "initializer");
    const n = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== n) issues.push(`initializer "${t.name}" has ${t.data.length} elements, dims ${fmt(t.dims)} need ${n}`);
  }
  for (const v of graph.outputs) if (!info.has(v.name)) info.set(v.name, v);
  graph.nodes.forEach((node, i) => {
    const label = `node ${i} (${node.op}${node.name ? ` "${node.name}"` : ""})`;
    const dtypes = new Set<string>();
    for (const input of node.inputs) {
      if (input === "") continue;
      if (!defined.has(input)) {
        issues.push(`${label} reads "${input}" which is not defined before it (dangling name or wrong order)`);
        continue;
      }
      const v = defined.get(input);
      if (v) dtypes.add(v.dtype);
    }
    if ((node.domain ?? "") === "" && SAME_DTYPE_OPS.has(node.op) && dtypes.size > 1) {
      issues.push(`${label} mixes element types ${[...dtypes].join(", ")}`);
    }
    // Cheap shape checks where both operand shapes are known.
    const shapes = node.inputs.map((n) => defined.get(n)?.shape);
    if ((node.domain ?? "") === "" && shapes.length === 2 && shapes[0] && shapes[1]) {
      try {
        if (node.op === "MatMul") matMulShape(shapes[0], shapes[1]);
        else if (BROADCAST_OPS.has(node.op)) broadcastShapes([shapes[0], shapes[1]], node.op);
      } catch (e) {
        issues.push(`${label}: ${(e as Error).message.replace(/^\[[a-z_]+\] /, "")}`);
      }
    }
    if (node.outputs.length === 0) issues.push(`${label} has no outputs`);
    for (const out of node.outputs) if (out !== "") define(out, info.get(out) ?? null, label);
  });
  for (const v of graph.outputs) {
    if (!defined.has(v.name)) issues.push(`graph output "${v.name}" is never produced`);
    const d = defined.get(v.name);
    if (d && d.dtype !== v.dtype) issues.push(`graph output "${v.name}" declared ${v.dtype} but is ${d.dtype}`);
  }
  return issues;
}

/** Throws AutodidactError(InvalidArgument) listing all issues if the graph is malformed. */
export function validate(graph: Graph): void {
  const issues = graphIssues(graph);
  if (issues.length > 0) {
    throw new AutodidactError(`graph "${graph.name}" is invalid: ${issues.slice(0, 20).join("; ")}${issues.length > 20 ? ` (+${issues.length - 20} more)` : ""}`, Code.InvalidArgument, {
      details: { issues },
    });
  }
}
