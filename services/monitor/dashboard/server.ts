import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { AutodidactError, Code } from "../../../src/platform/errors/index.js";
import { summarizeManifest } from "../evaluation/index.js";
import type { CheckpointRecord } from "../../../src/domain/registry/index.js";
import { createLogger } from "../../../src/platform/telemetry/index.js";
import { renderFragment, renderPage, type DashboardCheckpoint, type DashboardEvaluation, type DashboardState } from "./view.js";

/** What the dashboard reads: the monitor's history, evaluations and lineage (the monitor implements it). */
export interface DashboardSource {
  history(lineage: string): Promise<{ records: CheckpointRecord[]; promotedVersion: number }>;
  getEvaluation(lineage: string, version: number): Promise<DashboardEvaluation | undefined>;
  lineage(lineage: string, version: number): Promise<CheckpointRecord[]>;
  /** Per-round rates measured on the consensus decisions (acceptance, label accuracy, critic agreement), by round. */
  roundRates?(): Promise<ReadonlyMap<number, RoundRates>>;
}

/** Rates of one round measured on its decisions. */
export interface RoundRates {
  readonly acceptanceRate?: number;
  readonly labelAccuracyAccepted?: number;
  readonly labelAccuracyProposed?: number;
  readonly criticAgreement?: number;
}

/** Options of {@link startDashboard}. */
export interface DashboardOptions {
  readonly monitor: DashboardSource;
  readonly lineage: string;
  /** 0 = ephemeral. */
  readonly port: number;
  readonly host?: string;
  /** Page poll interval in ms (default 2000). */
  readonly pollMs?: number;
  /** Unused hook kept so callers can pass the registry later. */
  readonly registry?: unknown;
}

/** A running dashboard. */
export interface DashboardServer {
  /** `http://host:port/` */
  readonly url: string;
  readonly port: number;
  /** Tells the dashboard something changed (drops its cached state). */
  notify(): void;
  close(): Promise<void>;
}

/** Collects the dashboard state of a lineage from its source (exported for tests and reports). */
export async function collectDashboardState(source: DashboardSource, lineage: string): Promise<DashboardState> {
  const { records, promotedVersion } = await source.history(lineage);
  const rates = (await source.roundRates?.()) ?? new Map<number, RoundRates>();
  const checkpoints: DashboardCheckpoint[] = await Promise.all(
    records.map(async (record) => {
      const s = summarizeManifest(record);
      const evaluation = await source.getEvaluation(lineage, record.version);
      const r = rates.get(record.round) ?? {};
      const agreement = s.criticVotes.agreement ?? s.criticVotes.kappa ?? s.criticVotes.fleissKappa ?? r.criticAgreement;
      const acceptance = s.samplesProposed > 0 ? s.samplesAccepted / s.samplesProposed : r.acceptanceRate;
      return {
        record,
        ...(evaluation ? { evaluation } : {}),
        ...(acceptance !== undefined ? { acceptanceRate: acceptance } : {}),
        ...(agreement !== undefined ? { criticAgreement: agreement } : {}),
        ...(r.labelAccuracyAccepted !== undefined ? { labelAccuracyAccepted: r.labelAccuracyAccepted } : {}),
        ...(r.labelAccuracyProposed !== undefined ? { labelAccuracyProposed: r.labelAccuracyProposed } : {}),
        sampleIdsDigest: s.sampleIdsDigest,
        sampleCount: s.sampleCount,
      };
    }),
  );
  const lineageChain = promotedVersion > 0 ? (await source.lineage(lineage, promotedVersion)).map((r) => r.version) : [];
  return { lineage, promotedVersion, checkpoints, lineageChain, generatedAt: new Date().toISOString() };
}

/**
 * Serves the monitor's dashboard over HTTP: `/` (the page: SVG plots drawn server-side, history,
 * lineage; it re-fetches `/fragment` to update live), `/api/state` (JSON). No external assets.
 */
export async function startDashboard(options: DashboardOptions): Promise<DashboardServer> {
  const log = createLogger("dashboard");
  let cached: { at: number; state: Promise<DashboardState> } | undefined;
  const state = (): Promise<DashboardState> => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > 1000) {
      const p = collectDashboardState(options.monitor, options.lineage);
      cached = { at: now, state: p };
      p.catch(() => {
        if (cached?.state === p) cached = undefined;
      });
    }
    return cached.state;
  };
  const send = (res: ServerResponse, status: number, type: string, body: string): void => {
    res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
    res.end(body);
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (req.method !== "GET") return send(res, 405, "text/plain", "GET only\n");
    if (path === "/" || path === "/index.html") return send(res, 200, "text/html; charset=utf-8", renderPage(await state(), options.pollMs));
    if (path === "/fragment") return send(res, 200, "text/html; charset=utf-8", renderFragment(await state()));
    if (path === "/api/state") return send(res, 200, "application/json", JSON.stringify(await state()));
    if (path === "/healthz") return send(res, 200, "text/plain", "ok\n");
    return send(res, 404, "text/plain", "not found\n");
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.warn("dashboard request failed", { error: String(err) });
      if (!res.headersSent) send(res, 503, "text/plain", `unavailable: ${String(err)}\n`);
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new AutodidactError(`dashboard cannot listen on ${options.host ?? "127.0.0.1"}:${options.port}: ${String(err)}`, Code.Unavailable, { cause: err })));
    server.listen(options.port, options.host ?? "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host === undefined || options.host === "0.0.0.0" ? "127.0.0.1" : options.host;
  return {
    url: `http://${host}:${port}/`,
    port,
    notify() {
      cached = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
