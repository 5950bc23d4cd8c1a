// Critic agreement over the decisions one worker published: a window per task, and the
// observable gauges that read those windows when metrics are collected.
import type { ObservableGauge, ObservableResult } from "@opentelemetry/api";
import type { Decision } from "../../src/gen/autodidact/v1/consensus_pb.js";
import { createAgreementWindow, judgedSampleFromDecision, type AgreementReport, type AgreementWindow } from "../../src/domain/consensus/index.js";
import type { ConsensusInstruments } from "./metrics.js";

type GaugeCallback = (result: ObservableResult) => void;

/**
 * Agreement windows per task (the last `size` decisions each) and three gauges over them: each
 * critic's approval rate, its agreement with the decision, and Fleiss' kappa per task. The gauges
 * observe only while registered (between the worker's start and stop).
 */
export class AgreementMetrics {
  private readonly windows = new Map<string, AgreementWindow>();
  private readonly gauges: ReadonlyArray<[ObservableGauge, GaugeCallback]>;
  private readonly size: number;

  constructor(instruments: ConsensusInstruments, size: number) {
    this.size = size;
    const meter = instruments.meter;
    const approval = meter.createObservableGauge("autodidact.consensus.critic.approval_rate", {
      description: "Share of a critic's votes that approve, over the recent decisions of a task",
    });
    const match = meter.createObservableGauge("autodidact.consensus.critic.agreement_with_decision", {
      description: "Share of a critic's votes that matched the final decision, over the recent decisions of a task",
    });
    const kappa = meter.createObservableGauge("autodidact.consensus.fleiss_kappa", {
      description: "Fleiss' kappa of the critics over the recent decisions of a task",
    });
    this.gauges = [
      [approval, (r) => this.observe(r, "approval")],
      [match, (r) => this.observe(r, "match")],
      [kappa, (r) => this.observe(r, "kappa")],
    ];
  }

  /** Adds a published decision to the window of its task. */
  add(task: string, decision: Decision): void {
    let window = this.windows.get(task);
    if (window === undefined) {
      window = createAgreementWindow(this.size);
      this.windows.set(task, window);
    }
    window.add(judgedSampleFromDecision(decision));
  }

  /** The report over a task's window; null before its first decision. */
  report(task: string): AgreementReport | null {
    return this.windows.get(task)?.report() ?? null;
  }

  /** Starts observing (the gauges read the windows at collection time). */
  register(): void {
    for (const [gauge, callback] of this.gauges) gauge.addCallback(callback);
  }

  /** Stops observing. */
  unregister(): void {
    for (const [gauge, callback] of this.gauges) gauge.removeCallback(callback);
  }

  private observe(result: ObservableResult, which: "approval" | "match" | "kappa"): void {
    for (const [task, window] of this.windows) {
      const report = window.report();
      if (which === "kappa") {
        if (report.fleissKappa !== null) result.observe(report.fleissKappa, { task });
        continue;
      }
      for (const c of report.critics) {
        if (which === "approval") result.observe(c.approvalRate, { task, critic: c.criticId });
        else if (c.agreementWithDecision !== null) result.observe(c.agreementWithDecision, { task, critic: c.criticId });
      }
    }
  }
}
