// Telemetry as app.ts wires it: Prometheus metrics (on CHJOB_METRICS_ADDRESS,
// when set) and OpenTelemetry traces (when the OTEL_* variables ask), each as
// grpc-js server interceptors, hooks for the job runner, and a listener on the
// job store's commits.
//   metrics.ts         the metrics, their gRPC interceptor and job hooks
//   metrics-server.ts  GET /metrics over node:http
//   tracing.ts         the OpenTelemetry SDK, the RPC span interceptor and job phase spans
//   hooks.ts           what the runner calls (RunnerTelemetry)
//   rpc.ts             what both interceptors read from a call
import { readFileSync } from "node:fs";
import type { ServerInterceptor } from "@grpc/grpc-js";
import type { Logger } from "../log.js";
import type { JobStore } from "../store/job-store.js";
import { combineTelemetry, guarded, type RunnerTelemetry } from "./hooks.js";
import { tracingDecision } from "./otel-env.js";

export { NO_TELEMETRY, type JobRunTelemetry, type RunnerTelemetry } from "./hooks.js";

export interface TelemetryOptions {
  /** CHJOB_METRICS_ADDRESS; undefined: no metrics listener (and no metrics kept). */
  metricsAddress: string | undefined;
  /** Where the OTEL_* variables are read (the SDK itself reads process.env). */
  env: Record<string, string | undefined>;
  store: Pick<JobStore, "queueStats" | "committed">;
  /** Jobs running on this replica now. */
  runningJobs: () => number;
  replicaId: string;
  log: Logger;
}

export interface Telemetry {
  /** grpc-js server interceptors; put them first in the server's list, so that they see every status. */
  interceptors: ServerInterceptor[];
  /** What the job runner calls. */
  runner: RunnerTelemetry;
  /** For the "chjob serving" line: where /metrics is served, and where traces go. */
  summary: { metrics: string; traces: string };
  close(): Promise<void>;
}

export async function startTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  const { log } = opts;
  const interceptors: ServerInterceptor[] = [];
  const runners: RunnerTelemetry[] = [];
  const closers: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch((err) => log.warn({ err: String(err) }, "telemetry: close failed"));
  };
  try {
    let metrics = "off (CHJOB_METRICS_ADDRESS unset)";
    // prom-client and the OpenTelemetry SDK are loaded only when asked for.
    if (opts.metricsAddress !== undefined) {
      const { ServiceMetrics } = await import("./metrics.js");
      const { startMetricsServer } = await import("./metrics-server.js");
      const m = new ServiceMetrics({ store: opts.store, runningJobs: opts.runningJobs, log });
      closers.push(() => m.close());
      m.observeStore(opts.store);
      const server = await startMetricsServer(opts.metricsAddress, () => m.scrape(), log);
      closers.push(() => server.close());
      interceptors.push(m.interceptor);
      runners.push(m.runner);
      metrics = `http://${server.address}/metrics`;
    }
    let traces: string;
    const decision = tracingDecision(opts.env);
    if (decision.on) {
      const { Tracing } = await import("./tracing.js");
      const t = new Tracing(decision.endpoint, { env: opts.env, replicaId: opts.replicaId, version: packageVersion(), log });
      closers.push(() => t.close());
      t.observeStore(opts.store);
      interceptors.push(t.interceptor);
      runners.push(t.runner);
      traces = `OTLP/HTTP JSON to ${withoutCredentials(t.endpoint)}`;
    } else {
      traces = `off (${decision.why})`;
    }
    const runner = guarded(combineTelemetry(runners), (err) => log.warn({ err: String((err as Error)?.stack ?? err) }, "telemetry: a job hook failed; the job goes on"));
    return { interceptors, runner, summary: { metrics, traces }, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The OTEL_* variables of a `.env` file go into process.env (where the SDK reads them), unless
 * the real environment sets them: the same precedence as chjob's own variables.
 */
export function adoptOtelVariables(env: Record<string, string | undefined>): void {
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith("OTEL_") && value !== undefined && process.env[name] === undefined) process.env[name] = value;
  }
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "unknown";
  } catch {
    return "unknown";
  }
}

function withoutCredentials(url: string): string {
  return url.replace(/\/\/[^/@]*@/, "//");
}
