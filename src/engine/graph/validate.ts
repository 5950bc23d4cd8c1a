import { AutodidactError, Code } from "../../platform/errors/index.js";
import type { Graph, Node, ValueInfo } from "./ir.js";
import { broadcastShapes, fmt, matMulShape } from "./shape.js";

/** Ops whose inputs must share one element type (cheap dtype check). */
const SAME_DTYPE_OPS = new Set(["Add", "Sub", "Mul", "Div", "MatMul", "Concat", "Max", "Min", "Sum"]);
/** Binary ops with numpy broadcasting (cheap shape check). */
const BROADCAST_OPS = new Set(["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Where"]);

/**
 * Lists every structural problem of a graph: duplicate names, inputs used before they are
 * defined (which also catches dangling names and non-topological order), undefined graph outputs,
 * initializers whose data does not match their dims, and dtype clashes on same-type ops.
 * Subgraphs (GRAPH attributes, e.g. Loop's body) are checked the same way, with the values
 * defined before their node in the enclosing graphs visible to them, and a Loop's body must match
 * its node's signature. Returning all issues at once makes a broken generated graph easy to debug.
 */
export function graphIssues(graph: Graph): string[] {
  return scopeIssues(graph, new Map());
}

/** ONNX Loop: body (iteration, cond, N carried) → (cond, N carried, K scans); node (M, cond, N) → (N, K). */
function loopIssues(node: Node, body: Graph, label: string): string[] {
  const issues: string[] = [];
  const n = node.inputs.length - 2;
  if (n < 0) return [`${label} needs inputs (M, cond, carried...), got ${node.inputs.length}`];
  if (body.inputs.length !== n + 2) issues.push(`${label} body takes ${body.inputs.length} inputs, the node feeds iteration + cond + ${n} carried = ${n + 2}`);
  const k = body.outputs.length - 1 - n;
  if (k < 0) issues.push(`${label} body returns ${body.outputs.length} outputs, needs cond + ${n} carried at least`);
  else if (node.outputs.length !== n + k) issues.push(`${label} has ${node.outputs.length} outputs, its body yields ${n} carried + ${k} scan = ${n + k}`);
  const it = body.inputs[0];
  if (it && it.dtype !== "int64") issues.push(`${label} body input 0 (iteration) must be int64, is ${it.dtype}`);
  const cin = body.inputs[1];
  if (cin && cin.dtype !== "bool") issues.push(`${label} body input 1 (cond) must be bool, is ${cin.dtype}`);
  const cout = body.outputs[0];
  if (cout && cout.dtype !== "bool") issues.push(`${label} body output 0 (cond) must be bool, is ${cout.dtype}`);
  for (let i = 0; i < n; i++) {
    const bi = body.inputs[i + 2];
    const bo = body.outputs[i + 1];
    if (bi && bo && bi.dtype !== bo.dtype) issues.push(`${label} carried value ${i} enters the body as ${bi.dtype} and leaves as ${bo.dtype}`);
  }
  return issues;
}

function scopeIssues(graph: Graph, outer: ReadonlyMap<string, ValueInfo | null>): string[] {
  const issues: string[] = [];
  const defined = new Map<string, ValueInfo | null>();
  const define = (name: string, v: ValueInfo | null, what: string): void => {
    if (defined.has(name) || outer.has(name)) issues.push(`duplicate value "${name}" (${what})`);
    defined.set(name, v);
  };
  const lookup = (name: string): ValueInfo | null | undefined => (defined.has(name) ? defined.get(name) : outer.get(name));
  const visible = (name: string): boolean => defined.has(name) || outer.has(name);
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
      if (!visible(input)) {
        issues.push(`${label} reads "${input}" which is not defined before it (dangling name or wrong order)`);
        continue;
      }
      const v = lookup(input);
      if (v) dtypes.add(v.dtype);
    }
    if ((node.domain ?? "") === "" && SAME_DTYPE_OPS.has(node.op) && dtypes.size > 1) {
      issues.push(`${label} mixes element types ${[...dtypes].join(", ")}`);
    }
    // Cheap shape checks where both operand shapes are known.
    const shapes = node.inputs.map((n) => lookup(n)?.shape);
    if ((node.domain ?? "") === "" && shapes.length === 2 && shapes[0] && shapes[1]) {
      try {
        if (node.op === "MatMul") matMulShape(shapes[0], shapes[1]);
        else if (BROADCAST_OPS.has(node.op)) broadcastShapes([shapes[0], shapes[1]], node.op);
      } catch (e) {
        issues.push(`${label}: ${(e as Error).message.replace(/^\[[a-z_]+\] /, "")}`);
      }
    }
    for (const [name, a] of Object.entries(node.attrs ?? {})) {
      if (a.kind !== "graph") continue;
      if (node.op === "Loop" && name === "body") issues.push(...loopIssues(node, a.value, label));
      const scope = new Map([...outer, ...defined]);
      for (const issue of scopeIssues(a.value, scope)) issues.push(`${label} subgraph "${name}": ${issue}`);
    }
    if (node.outputs.length === 0) issues.push(`${label} has no outputs`);
    for (const out of node.outputs) if (out !== "") define(out, info.get(out) ?? null, label);
  });
  for (const v of graph.outputs) {
    if (!visible(v.name)) issues.push(`graph output "${v.name}" is never produced`);
    const d = lookup(v.name);
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
