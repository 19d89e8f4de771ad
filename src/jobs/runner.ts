// Runs jobs: export with ClickHouse's s3(), server-side copy to the result
// object, and every status change published to the registry. Also owns the
// rules around it: export slots and the queue, one active job per
// (report_id, query_id), cancel, timeout and shutdown.
import { randomUUID } from "node:crypto";
import type { ClickHouseSettings } from "@clickhouse/client";
import type { S3Location } from "../config/types.js";
import { clickHouseCode, describeClickHouseError, type ClickHouseEngine, type ExportRef } from "../clickhouse/engine.js";
import { exportKey, exportSql, objectUrl } from "../clickhouse/export-sql.js";
import { jobNotFound, ResourceExhaustedError, UnavailableError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Redactor } from "../redact.js";
import { ObjectStoreError, s3Uri, type ObjectLocation, type ObjectStore } from "../storage/object-store.js";
import { JobStatus, newJob, transition, withProgress, type JobSnapshot, type StatusChange } from "./job.js";
import type { JobRegistry } from "./registry.js";
import { Slots } from "./slots.js";

export interface RunnerSettings {
  /** S3 endpoint as ClickHouse reaches it. */
  clickhouseS3Endpoint: string;
  output: S3Location;
  storageBucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  timeoutMs: number;
  maxConcurrent: number;
  maxQueued: number;
  /** Longest accepted query text; ClickHouse's max_query_size is raised to fit it. */
  maxQueryBytes: number;
  /** How often running exports are sampled from system.processes. */
  sampleIntervalMs: number;
  /** After a kill, how long to wait for the export to stop before giving up on it. */
  killWaitMs: number;
}

export interface RunnerDeps {
  engine: ClickHouseEngine;
  store: ObjectStore;
  registry: JobRegistry;
  log: Logger;
  redact: Redactor;
  settings: RunnerSettings;
  now?: () => number;
}

export interface JobRequest {
  reportId: string;
  queryId: string;
  /** As the client sent it (kept on the job). */
  queryText: string;
  /** The one checked statement the export runs. */
  statement: string;
}

/** Why a job stopped early: the status it ends in and the error it carries. */
interface StopReason {
  status: JobStatus.CANCELLED | JobStatus.FAILED;
  error: string;
}

interface ActiveJob {
  snapshot: JobSnapshot;
  readonly key: string;
  readonly ref: ExportRef;
  readonly sql: string;
  readonly exportAt: ObjectLocation;
  readonly resultAt: ObjectLocation;
  readonly stop: AbortController;
  /** Settles when the job's whole pipeline has ended (its export and copy have stopped). */
  finished: Promise<void>;
  /** Rows written and bytes read by the finished export (chDB: read while the copy runs). */
  figures: Promise<{ totalRows: number | undefined; bytesProcessed: number | undefined }> | undefined;
}

export class JobRunner {
  private readonly active = new Map<string, ActiveJob>();
  /** The newest active job of each (report_id, query_id). */
  private readonly byKey = new Map<string, ActiveJob>();
  private readonly slots: Slots;
  private readonly now: () => number;
  private accepting = true;
  private sampler: NodeJS.Timeout | undefined;
  private sampling = false;

  constructor(private readonly deps: RunnerDeps) {
    this.slots = new Slots(deps.settings.maxConcurrent);
    this.now = deps.now ?? Date.now;
  }

  get activeCount(): number {
    return this.active.size;
  }

  async create(req: JobRequest): Promise<JobSnapshot> {
    if (!this.accepting) throw new UnavailableError("the service is shutting down; send the job to another instance or retry later");
    const { settings } = this.deps;
    const pending = [...this.active.values()].filter((j) => j.snapshot.status === JobStatus.PENDING).length;
    if (pending >= this.slots.free + settings.maxQueued) {
      throw new ResourceExhaustedError(
        `the job queue is full (${settings.maxConcurrent} running, ${pending} waiting; CHJOB_MAX_QUEUED_JOBS=${settings.maxQueued}); retry later`,
      );
    }
    const id = randomUUID();
    const exportAt = { bucket: settings.output.bucket, key: exportKey(settings.output.prefix, req.reportId, req.queryId) };
    const url = objectUrl(settings.clickhouseS3Endpoint, exportAt.bucket, exportAt.key);
    const job: ActiveJob = {
      snapshot: newJob({ id, reportId: req.reportId, queryId: req.queryId, queryText: req.queryText, exportUri: s3Uri(exportAt), now: this.now() }),
      key: `${req.reportId}/${req.queryId}`,
      ref: { jobId: id, url },
      sql: exportSql({ endpoint: settings.clickhouseS3Endpoint, ...exportAt, accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey }, req.statement),
      exportAt,
      resultAt: { bucket: settings.storageBucket, key: `${id}.csv` },
      stop: new AbortController(),
      finished: Promise.resolve(),
      figures: undefined,
    };
    await this.deps.registry.create(job.snapshot);
    this.deps.log.info({ job: id, report: req.reportId, query: req.queryId, status: "PENDING" }, "job created");

    const earlier = this.byKey.get(job.key);
    this.byKey.set(job.key, job);
    this.active.set(id, job);
    if (earlier) this.stopJob(earlier, { status: JobStatus.CANCELLED, error: `superseded by job ${id} for the same report_id and query_id` });
    job.finished = this.run(job, earlier?.finished).finally(() => {
      this.active.delete(id);
      if (this.byKey.get(job.key) === job) this.byKey.delete(job.key);
    });
    return job.snapshot;
  }

  /** Cancels an active job; a finished one is returned as it is. */
  async cancel(id: string): Promise<JobSnapshot> {
    const job = this.active.get(id);
    if (job) {
      this.stopJob(job, { status: JobStatus.CANCELLED, error: "cancelled by CancelJob" });
      return job.snapshot;
    }
    const snapshot = await this.deps.registry.get(id);
    if (!snapshot) throw jobNotFound(id);
    return snapshot;
  }

  /**
   * Stops taking jobs, lets running ones finish for up to `graceMs`, then
   * cancels the rest on the server and waits for them to stop.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.accepting = false;
    const all = () => Promise.allSettled([...this.active.values()].map((j) => j.finished));
    if (this.active.size > 0) {
      this.deps.log.info({ jobs: this.active.size, graceMs }, "waiting for active jobs before shutdown");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    for (const job of this.active.values()) {
      this.stopJob(job, { status: JobStatus.CANCELLED, error: "cancelled: the service shut down before the job finished" });
    }
    await all();
    this.stopSampler();
  }

  private async run(job: ActiveJob, earlier: Promise<void> | undefined): Promise<void> {
    const signal = job.stop.signal;
    try {
      // The shared export path must hold only the newest result: wait until
      // the superseded job's export and copy have stopped.
      if (earlier) await earlier;
      signal.throwIfAborted();
      await this.slots.acquire(signal);
      // The limit covers the export and the copy: a copy that hangs (S3 silent) is stopped too.
      const { timeoutMs } = this.deps.settings;
      const timeout = setTimeout(
        () => this.stopJob(job, { status: JobStatus.FAILED, error: `${ranTooLong(timeoutMs)} and was stopped` }),
        timeoutMs,
      );
      try {
        signal.throwIfAborted();
        await this.export(job);
        signal.throwIfAborted();
        this.update(job, (s) => transition(s, JobStatus.READING_RESULTS, {}, this.now()));
        await this.copy(job);
      } finally {
        clearTimeout(timeout);
        this.slots.release();
      }
    } catch (err) {
      if (!signal.aborted) this.finish(job, { status: JobStatus.FAILED, error: this.describe(err) });
    }
  }

  private async export(job: ActiveJob): Promise<void> {
    const { engine, settings } = this.deps;
    this.update(job, (s) => transition(s, JobStatus.RUNNING, {}, this.now()));
    this.deps.log.debug({ job: job.snapshot.id, sql: job.sql }, "export statement");
    const exportSettings: ClickHouseSettings = {
      s3_truncate_on_insert: 1,
      // ClickHouse parses at most 256 KiB by default; every accepted query must fit with the s3() head.
      max_query_size: String(Math.max(262_144, settings.maxQueryBytes + 65_536)),
      // The server stops the query itself too, should this process be gone.
      max_execution_time: Math.ceil(settings.timeoutMs / 1000),
    };
    const running = engine.runExport(job.ref, job.sql, exportSettings);
    this.startSampler();
    const onStop = () => void this.killUntilStopped(job, running);
    job.stop.signal.addEventListener("abort", onStop, { once: true });
    try {
      const { figures } = await running;
      // Only measured figures: a progress sample is not final, and 0 would claim an empty result.
      job.figures = figures.then((f) => ({ totalRows: f.writtenRows, bytesProcessed: f.readBytes }));
    } catch (err) {
      if (clickHouseCode(err) === 159) {
        throw new JobTimeoutError(`${ranTooLong(settings.timeoutMs)}: ${describeClickHouseError(err)}`);
      }
      throw err;
    } finally {
      job.stop.signal.removeEventListener("abort", onStop);
    }
  }

  private async copy(job: ActiveJob): Promise<void> {
    const { store } = this.deps;
    const signal = job.stop.signal;
    let size: number;
    try {
      ({ size } = await store.copy(job.exportAt, job.resultAt, signal));
    } catch (err) {
      await this.removeResult(job);
      throw err;
    }
    const figures = await job.figures;
    const done = this.finish(job, {
      status: JobStatus.DONE,
      change: { resultUri: s3Uri(job.resultAt), resultSize: size, ...figures },
    });
    // Stopped between the copy and DONE: nothing may stay at result_uri.
    if (!done) await this.removeResult(job);
  }

  private async removeResult(job: ActiveJob): Promise<void> {
    await this.deps.store.delete(job.resultAt).catch((err) =>
      this.deps.log.warn({ job: job.snapshot.id, err: this.describe(err) }, "could not remove the result object of an unfinished job"),
    );
  }

  /** Ends an active job early; what it is doing stops through its abort signal. */
  private stopJob(job: ActiveJob, reason: StopReason): void {
    if (job.stop.signal.aborted) return;
    if (this.finish(job, { status: reason.status, change: { error: reason.error } })) job.stop.abort(reason);
  }

  /** Kills the export on the server, again every few seconds, until its promise settles or killWaitMs passes. */
  private async killUntilStopped(job: ActiveJob, running: Promise<unknown>): Promise<void> {
    const { engine, settings, log } = this.deps;
    let settled = false;
    void running.then(
      () => (settled = true),
      () => (settled = true),
    );
    const deadline = this.now() + settings.killWaitMs;
    while (!settled && this.now() < deadline) {
      await engine.kill(job.ref).catch((err) => log.warn({ job: job.snapshot.id, err: this.describe(err) }, "KILL QUERY failed"));
      await Promise.race([running.catch(() => undefined), sleep(2000)]);
    }
    if (!settled) log.error({ job: job.snapshot.id }, "the export did not stop after KILL QUERY; its slot is released anyway");
  }

  private finish(job: ActiveJob, end: { status: JobStatus; change?: StatusChange } | StopReason): boolean {
    const change = "error" in end ? { error: end.error } : (end.change ?? {});
    return this.update(job, (s) => transition(s, end.status, change, this.now()));
  }

  /** Applies a change to the job's state and publishes it; false when the change is not allowed (e.g. the job has ended). */
  private update(job: ActiveJob, next: (s: JobSnapshot) => JobSnapshot | undefined): boolean {
    const before = job.snapshot;
    const after = next(before);
    if (!after) return false;
    job.snapshot = after;
    void this.deps.registry.publish(after).catch((err) => this.deps.log.error({ job: after.id, err: String(err) }, "could not store job state"));
    if (after.status !== before.status) {
      const t = this.now();
      this.deps.log.info(
        {
          job: after.id,
          report: after.reportId,
          query: after.queryId,
          status: JobStatus[after.status],
          from: JobStatus[before.status],
          ms: t - before.updatedAt,
          totalMs: t - after.createdAt,
          ...(after.error ? { error: after.error } : {}),
          ...(after.status === JobStatus.DONE ? { resultUri: after.resultUri, resultSize: after.resultSize, totalRows: after.totalRows } : {}),
        },
        "job status",
      );
    }
    return true;
  }

  private startSampler(): void {
    if (this.sampler) return;
    this.sampler = setInterval(() => void this.sample(), this.deps.settings.sampleIntervalMs);
    this.sampler.unref();
  }

  private stopSampler(): void {
    clearInterval(this.sampler);
    this.sampler = undefined;
  }

  /** One system.processes query for all running exports. */
  private async sample(): Promise<void> {
    if (this.sampling) return;
    const running = [...this.active.values()].filter((j) => j.snapshot.status === JobStatus.RUNNING);
    if (running.length === 0) {
      this.stopSampler();
      return;
    }
    this.sampling = true;
    try {
      const samples = await this.deps.engine.sample(running.map((j) => j.ref));
      for (const job of running) {
        const s = samples.get(job.snapshot.id);
        if (!s) continue;
        this.update(job, (snap) => withProgress(snap, s, this.now()));
      }
    } catch (err) {
      this.deps.log.warn({ err: this.describe(err) }, "progress sample failed");
    } finally {
      this.sampling = false;
    }
  }

  /** A failure in words a person can act on, with no secret in it. */
  private describe(err: unknown): string {
    const text = err instanceof ObjectStoreError || err instanceof JobTimeoutError ? err.message : describeClickHouseError(err);
    return this.deps.redact(text);
  }
}

/** ClickHouse stopped the export at max_execution_time, which the runner sets from CHJOB_JOB_TIMEOUT. */
class JobTimeoutError extends Error {
  override readonly name = "JobTimeoutError";
}

function ranTooLong(timeoutMs: number): string {
  return `the job ran longer than CHJOB_JOB_TIMEOUT (${formatMs(timeoutMs)})`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

export function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
