// Which variant of the experiment a run is: the default or one of the ablations. A variant changes
// one thing of the run spec (the filter, the data mix, or the labels regime), so a report can put the
// runs side by side and say what differs.

/** Where the gate may read labelled validation problems. */
export type LabelsRegime = "base" | "all";

/** One variant of the demo's run. */
export interface RunVariant {
  readonly name: string;
  readonly description: string;
  /** false: every proposed sample is accepted (the consensus policy counts only an accept-all critic). */
  readonly consensus: boolean;
  readonly data: "accumulate" | "replace";
  /**
   * `base`: validation labels only in the base range (what a real user has; the default). `all`: at
   * every difficulty — the named ablation `labels.ablation_validation_beyond_anchor`.
   */
  readonly labels: LabelsRegime;
}

/** The variants the report compares. */
export const VARIANTS: Readonly<Record<"default" | "no-consensus" | "replace" | "validation-all", RunVariant>> = Object.freeze({
  default: {
    name: "default",
    description: "consensus of model critics + length filter; accepted data accumulates; validation labels only in the base range",
    consensus: true,
    data: "accumulate",
    labels: "base",
  },
  "no-consensus": {
    name: "no-consensus",
    description: "every proposed sample accepted (no filtering); data accumulates; validation labels only in the base range",
    consensus: false,
    data: "accumulate",
    labels: "base",
  },
  replace: {
    name: "replace",
    description: "consensus on; each round's accepted data replaces the previous rounds'; validation labels only in the base range",
    consensus: true,
    data: "replace",
    labels: "base",
  },
  "validation-all": {
    name: "validation-all",
    description: "ABLATION: the gate reads validation labels at every length (answers a real user would not have); consensus on",
    consensus: true,
    data: "accumulate",
    labels: "all",
  },
});

/** The variants one invocation runs, from the flags. */
export function selectVariants(v: { all?: boolean; consensus: boolean; replace?: boolean; labels?: string }): RunVariant[] {
  if (v.all) return [VARIANTS.default, VARIANTS["no-consensus"], VARIANTS["validation-all"]];
  const labels: LabelsRegime = v.labels === "validation-all" ? "all" : "base";
  const data = v.replace ? "replace" : "accumulate";
  const named = Object.values(VARIANTS).find((x) => x.consensus === v.consensus && x.data === data && x.labels === labels);
  if (named !== undefined) return [named];
  const parts = [v.consensus ? "" : "no-consensus", data === "replace" ? "replace" : "", labels === "all" ? "validation-all" : ""].filter((p) => p !== "");
  const description = [
    v.consensus ? "consensus on" : "every proposed sample accepted",
    data === "replace" ? "each round's data replaces the previous" : "data accumulates",
    labels === "all" ? "ABLATION: validation labels at every length" : "validation labels only in the base range",
  ].join("; ");
  return [{ name: parts.join("-"), description, consensus: v.consensus, data, labels }];
}
