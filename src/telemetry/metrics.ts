// The service's Prometheus metrics (prom-client), on a registry of their own:
// Node's default process metrics, the job figures, and per-RPC figures by a
// grpc-js server interceptor with grpc-prometheus's names and labels. Labels
// take only values from small fixed sets (status, phase, method, code): never a
// job id, a report or query id, or query text.
//
// Where each figure comes from:
// - queue figures: the shared store, read at each scrape (every replica reports the same queue);
// - running jobs: this replica's runner;
// - finished jobs and result sizes: the states this process committed (JobStore.committed), so each
//   job's end is counted once, by the replica that wrote it, and sums over replicas are exact;
// - phase durations: the replica that ran the job (RunnerTelemetry), a never-run job's queue time
//   by the replica that ended it.
import { performance } from "node:perf_hooks";
import { ServerInterceptingCall, type ServerInterceptor } from "@grpc/grpc-js";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Subscription } from "rxjs";
import { isTerminal, JobStatus, type JobSnapshot } from "../jobs/job.js";
import type { Logger } from "../log.js";
import type { JobStore, QueueStats } from "../store/job-store.js";
import type { JobPhase, JobRunTelemetry, RunnerTelemetry } from "./hooks.js";
import { abandonedStatus, codeName, rpcName, rpcType } from "./rpc.js";

const WATCH_JOB = "/chjob.v1.JobService/WatchJob";

export interface MetricsOptions {
  /** The shared queue, read at each scrape. */
  store: Pick<JobStore, "queueStats">;
  /** Jobs running on this replica now. */
  runningJobs: () => number;
  log: Logger;
}

export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly finished: Counter<"status">;
  private readonly queueWait: Histogram;
  private readonly jobDuration: Histogram<"status" | "phase">;
  private readonly resultBytes: Histogram;
  private readonly watchers: Gauge;
  private readonly rpcStarted: Counter<"grpc_type" | "grpc_service" | "grpc_method">;
  private readonly rpcHandled: Counter<"grpc_type" | "grpc_service" | "grpc_method" | "grpc_code">;
  private readonly rpcSeconds: Histogram<"grpc_type" | "grpc_service" | "grpc_method">;
  private readonly rpcReceived: Counter<"grpc_type" | "grpc_service" | "grpc_method">;
  private readonly rpcSent: Counter<"grpc_type" | "grpc_service" | "grpc_method">;
  private readonly subscriptions: Subscription[] = [];
  /** One store read serves both queue gauges of a scrape (each scrape reads anew). */
  private stats: Promise<QueueStats | undefined> | undefined;

  constructor(private readonly opts: MetricsOptions) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });

    const queueGauge = (name: string, help: string, pick: (s: QueueStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect: async function (this: Gauge) {
          const s = await queueStats();
          if (s) this.set(pick(s));
          else this.reset(); // the store does not answer: no figure rather than a stale one
        },
      });
    const queueStats = () => this.queueStats();
    queueGauge("chjob_queue_depth", "Jobs waiting in PENDING, service-wide (from the shared job store).", (s) => s.pending);
    queueGauge("chjob_oldest_pending_age_seconds", "Age of the oldest PENDING job, service-wide; 0 when none waits.", (s) => s.oldestPendingAgeMs / 1000);
    new Gauge({
      name: "chjob_running_jobs",
      help: "Jobs running on this replica (export or copy).",
      registers,
      collect: function (this: Gauge) {
        this.set(opts.runningJobs());
      },
    });
    this.finished = new Counter({
      name: "chjob_jobs_finished_total",
      help: "Jobs that ended, by final status (DONE, FAILED, CANCELLED), counted by the replica that ended them.",
      labelNames: ["status"],
      registers,
    });
    for (const status of ["DONE", "FAILED", "CANCELLED"]) this.finished.inc({ status }, 0);
    this.queueWait = new Histogram({
      name: "chjob_queue_wait_seconds",
      help: "Time from CreateJob to a replica claiming the job.",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.jobDuration = new Histogram({
      name: "chjob_job_duration_seconds",
      help: "Time jobs spent in each phase (queue, export, copy), by final status.",
      labelNames: ["status", "phase"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.resultBytes = new Histogram({
      name: "chjob_result_bytes",
      help: "Size of the result objects of DONE jobs.",
      // 1 KiB to 1 TiB, ×4 each.
      buckets: Array.from({ length: 16 }, (_, i) => 1024 * 4 ** i),
      registers,
    });
    this.watchers = new Gauge({ name: "chjob_watchers", help: "Open WatchJob streams on this replica.", registers });

    const rpcLabels = ["grpc_type", "grpc_service", "grpc_method"] as const;
    this.rpcStarted = new Counter({ name: "grpc_server_started_total", help: "RPCs started on the server.", labelNames: rpcLabels, registers });
    this.rpcHandled = new Counter({
      name: "grpc_server_handled_total",
      help: "RPCs completed on the server, by status code.",
      labelNames: [...rpcLabels, "grpc_code"],
      registers,
    });
    this.rpcSeconds = new Histogram({
      name: "grpc_server_handling_seconds",
      help: "Time from the start of an RPC to its status (a WatchJob stream lasts as long as its job).",
      labelNames: rpcLabels,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600],
      registers,
    });
    this.rpcReceived = new Counter({ name: "grpc_server_msg_received_total", help: "Request messages received.", labelNames: rpcLabels, registers });
    this.rpcSent = new Counter({ name: "grpc_server_msg_sent_total", help: "Response messages sent.", labelNames: rpcLabels, registers });
  }

  /** Prometheus text of every metric, and its Content-Type. */
  async scrape(): Promise<{ text: string; contentType: string }> {
    this.stats = undefined;
    return { text: await this.registry.metrics(), contentType: this.registry.contentType };
  }

  private queueStats(): Promise<QueueStats | undefined> {
    this.stats ??= this.opts.store.queueStats().catch((err: unknown) => {
      this.opts.log.debug({ err: String(err) }, "metrics: the job store did not answer; queue figures left out of this scrape");
      return undefined;
    });
    return this.stats;
  }

  /** Counts the job states this process commits (ends, result sizes, never-run queue times). */
  observeStore(store: Pick<JobStore, "committed">): void {
    this.subscriptions.push(
      store.committed.subscribe((s) => {
        if (!isTerminal(s.status)) return;
        const status = JobStatus[s.status];
        this.finished.inc({ status });
        if (s.status === JobStatus.DONE) this.resultBytes.observe(s.resultSize);
        // Ended before any replica claimed it (cancelled, superseded): its whole life was the queue.
        if (s.attempt === 0) this.jobDuration.observe({ status, phase: "queue" }, seconds(s.updatedAt - s.createdAt));
      }),
    );
  }

  /** Phase durations of the jobs this replica runs. */
  readonly runner: RunnerTelemetry = {
    creating: () => undefined,
    claimed: (job) => this.run(job),
  };

  private run(job: JobSnapshot): JobRunTelemetry {
    // A fresh claim (not a run again after a replica stopped): the queue ends now.
    const queued = job.attempt === 1 && job.status === JobStatus.RUNNING ? seconds(job.updatedAt - job.createdAt) : undefined;
    if (queued !== undefined) this.queueWait.observe(queued);
    const spent = new Map<JobPhase, number>();
    let current: { phase: JobPhase; since: number } | undefined;
    const close = () => {
      if (current) spent.set(current.phase, (spent.get(current.phase) ?? 0) + (performance.now() - current.since) / 1000);
      current = undefined;
    };
    return {
      phase: (phase) => {
        close();
        current = { phase, since: performance.now() };
      },
      headers: () => ({}),
      ended: (final) => {
        close();
        // A run handed over or lost: the replica that ends the job observes it.
        if (!isTerminal(final.status)) return;
        const status = JobStatus[final.status];
        if (queued !== undefined) this.jobDuration.observe({ status, phase: "queue" }, queued);
        for (const [phase, s] of spent) this.jobDuration.observe({ status, phase }, s);
      },
    };
  }

  /** grpc-js server interceptor: grpc_server_* per RPC, and chjob_watchers. Put it first in the list, so that it sees every status. */
  readonly interceptor: ServerInterceptor = (method, call) => {
    const { service, method: name } = rpcName(method.path);
    const labels = { grpc_type: rpcType(method), grpc_service: service, grpc_method: name };
    const watch = method.path === WATCH_JOB;
    let since: number | undefined;
    const finish = (code: number) => {
      if (since === undefined) return;
      this.rpcHandled.inc({ ...labels, grpc_code: codeName(code) });
      this.rpcSeconds.observe(labels, (performance.now() - since) / 1000);
      if (watch) this.watchers.dec();
      since = undefined;
    };
    return new ServerInterceptingCall(call, {
      start: (next) => {
        since = performance.now();
        this.rpcStarted.inc(labels);
        if (watch) this.watchers.inc();
        next({
          onReceiveMessage: (message, pass) => {
            this.rpcReceived.inc(labels);
            pass(message);
          },
          onCancel: () => finish(abandonedStatus(call)),
        });
      },
      sendMessage: (message, pass) => {
        this.rpcSent.inc(labels);
        pass(message);
      },
      sendStatus: (status, pass) => {
        finish(status.code);
        pass(status);
      },
    });
  };

  close(): void {
    this.subscriptions.forEach((s) => s.unsubscribe());
    this.registry.clear();
  }
}

function seconds(ms: number): number {
  return Math.max(0, ms) / 1000;
}
