// Runs the jobs this process claims from the job store: export with
// ClickHouse's s3(), server-side copy to the result object, each status
// written to the store in order. The rules that span jobs or processes
// (supersede, queue, claims, cancel requests, leases) are the store's; the
// runner executes what it claimed and stops what the store says has ended.
import { createHash, randomUUID } from "node:crypto";
import type { ClickHouseSettings } from "@clickhouse/client";
import type { Subscription } from "rxjs";
import type { S3Location } from "../config/types.js";
import { clickHouseCode, describeClickHouseError, NO_FIGURES, type ClickHouseEngine, type ExportFigures, type ExportRef } from "../clickhouse/engine.js";
import { exportKey, exportSql, objectUrl } from "../clickhouse/export-sql.js";
import { normalizeStatement } from "../clickhouse/sql-text.js";
import { AlreadyExistsError, jobNotFound, ResourceExhaustedError, UnavailableError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Redactor } from "../redact.js";
import { ObjectStoreError, parseS3Uri, s3Uri, type ObjectLocation, type ObjectStore } from "../storage/object-store.js";
import { StaleStateError, type JobStore } from "../store/job-store.js";
import { NO_TELEMETRY, type JobRunTelemetry, type RunnerTelemetry } from "../telemetry/hooks.js";
import { canTransition, isTerminal, JobStatus, progressIsNews, type JobLimits, type JobSnapshot, type StateChange } from "./job.js";
import { clickhouseFormat, fileExtension, objectHeaders, type ResultKind } from "./result-format.js";
import { checkQueryText } from "./validate.js";

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
  /** This replica's name in the store (Job.replica, leases). */
  replicaId: string;
  leaseMs: number;
  maxAttempts: number;
  /** How often the shared queue is looked at besides the wake-ups this process gets. */
  pollIntervalMs: number;
  /** Whether the engine keeps running an export whose client went away (a ClickHouse server does, chDB does not). */
  serverSideExports: boolean;
  /** ClickHouse's S3 upload settings for every export: part sizes and parts in flight (../storage/parts.ts exportUploadSettings). */
  uploadSettings: ClickHouseSettings;
}

export interface RunnerDeps {
  engine: ClickHouseEngine;
  objects: ObjectStore;
  store: JobStore;
  log: Logger;
  redact: Redactor;
  settings: RunnerSettings;
  /** Metrics and traces of the jobs (../telemetry); none when absent. */
  telemetry?: RunnerTelemetry;
}

export interface JobRequest {
  reportId: string;
  queryId: string;
  /** As the client sent it (kept on the job). */
  queryText: string;
  /** CreateJob's request_id, if any. */
  requestId: string | undefined;
  kind: ResultKind;
  /** Checked against the service's limits already. */
  limits: JobLimits;
  reuseMaxAgeMs: number | undefined;
}

interface RunningJob {
  /** The newest state this runner knows (its own writes, or what the store said). */
  snapshot: JobSnapshot;
  readonly ref: ExportRef;
  readonly exportAt: ObjectLocation;
  readonly resultAt: ObjectLocation;
  /** Aborted when the job must stop: ended elsewhere (cancel, supersede), timed out, lease lost. */
  readonly stop: AbortController;
  /** This job's writes, one after another (a progress sample and a status change never race). */
  writes: Promise<unknown>;
  /** The version this runner's write in flight will give the job: its own echo from the store is not news. */
  writing: number | undefined;
  /** What the engine measured of the export (settles beside the copy). */
  figures: Promise<ExportFigures> | undefined;
  /** Stopped for another replica (hand-over at shutdown, a lease taken over): no status write, no release, no result removal. */
  handingOver: boolean;
  /** The attempt this runner runs; a later one is another replica's (or another run's). */
  readonly attempt: number;
  /** Phases of this run, for metrics and traces. */
  readonly telemetry: JobRunTelemetry;
}

export class JobRunner {
  private readonly running = new Map<string, RunningJob>();
  private accepting = true;
  private claiming = false;
  private claimAgain = false;
  /** Slots held for creates in flight that may claim their job in the same transaction. */
  private reserved = 0;
  /** Wake-ups with news of the queue so far, and whether the queue may hold work not yet claimed. */
  private news = 0;
  private queueMayHaveWork = true;
  private readonly timers: NodeJS.Timeout[] = [];
  private sampler: NodeJS.Timeout | undefined;
  private sampling = false;
  private readonly subscriptions: Subscription[] = [];
  private draining = false;

  constructor(private readonly deps: RunnerDeps) {}

  get activeCount(): number {
    return this.running.size;
  }

  /** Starts taking work from the store's queue (jobs left by an earlier run included). */
  start(): void {
    const { store, settings } = this.deps;
    this.subscriptions.push(
      store.changes.subscribe((s) => this.onStoredState(s)),
      // Another replica made work claimable: look now rather than at the next poll.
      store.queueChanged.subscribe(() => this.wake()),
    );
    const poll = setInterval(() => this.wake(), settings.pollIntervalMs);
    const renew = setInterval(() => void this.renewLeases(), Math.max(250, Math.floor(settings.leaseMs / 3)));
    this.timers.push(poll, renew);
    void this.renewLeases();
    this.wake();
  }

  async create(req: JobRequest): Promise<JobSnapshot> {
    if (!this.accepting) throw new UnavailableError("the service is shutting down; send the job to another instance or retry later");
    const { settings, store, log } = this.deps;
    const id = randomUUID();
    const exportAt = this.exportLocation(req.reportId, req.queryId, req.kind);
    const statement = checkQueryText(req.queryText, settings.maxQueryBytes);
    // A free slot here: the store may hand the job straight to it (one transaction, no claim).
    const slot = this.accepting && this.running.size + this.reserved < settings.maxConcurrent;
    if (slot) this.reserved++;
    // Jobs that this replica's free slots take at once do not count as waiting.
    const outcome = await store.create(
      {
        id,
        reportId: req.reportId,
        queryId: req.queryId,
        queryText: req.queryText,
        exportUri: s3Uri(exportAt),
        requestId: req.requestId,
        requestHash: req.requestId === undefined ? undefined : requestHash(req),
        kind: req.kind,
        contentType: objectHeaders(req.kind).contentType,
        limits: req.limits,
        reuseMaxAgeMs: req.reuseMaxAgeMs,
        queryHash: queryHash(statement),
        target: this.deps.engine.description,
        traceParent: this.deps.telemetry?.creating(id),
      },
      settings.maxQueued + Math.max(0, settings.maxConcurrent - this.running.size),
      slot ? { replica: settings.replicaId, leaseMs: settings.leaseMs } : undefined,
    ).finally(() => {
      if (slot) this.reserved--;
    });
    switch (outcome.kind) {
      case "queue-full":
        throw new ResourceExhaustedError(
          `the job queue is full (${outcome.pending} waiting; CHJOB_MAX_QUEUED_JOBS=${settings.maxQueued}); retry later`,
        );
      case "conflict":
        throw new AlreadyExistsError(
          `request_id ${req.requestId} was used for job ${outcome.job.id} with another request (report_id, query_id or query_text differ); send a new request_id for a new job`,
        );
      case "existing":
        return outcome.job;
      case "created":
        log.info({ job: id, report: req.reportId, query: req.queryId, status: "PENDING", ...(req.requestId ? { requestId: req.requestId } : {}) }, "job created");
        for (const s of outcome.superseded) log.info({ job: s.id, status: "CANCELLED", by: id }, "job superseded");
        // Claimed in the create's transaction: this replica holds it now, whatever happens meanwhile.
        if (outcome.claimed) this.execute(outcome.claimed);
        else this.wake();
        return outcome.job;
    }
  }

  /** Ends an active job CANCELLED (the replica running it stops its export); a finished one is returned as it is. */
  async cancel(id: string): Promise<JobSnapshot> {
    const job = await this.deps.store.requestCancel(id, "cancelled by CancelJob");
    if (!job) throw jobNotFound(id);
    return job;
  }

  /**
   * Stops claiming, lets running jobs finish for up to `graceMs`, then either hands the rest
   * to the other live replicas (`handOver`: their exports stop here and run again there) or
   * cancels them, and waits for their exports to stop. Waiting jobs stay queued in the store.
   */
  async shutdown(graceMs: number, opts: { handOver: boolean } = { handOver: false }): Promise<void> {
    const { store, settings, log } = this.deps;
    this.accepting = false;
    this.draining = true;
    await store.heartbeat(settings.replicaId, true).catch(() => undefined);
    const all = () => Promise.allSettled([...this.running.values()].map((r) => this.settled(r)));
    if (this.running.size > 0) {
      log.info({ jobs: this.running.size, graceMs }, "waiting for active jobs before shutdown");
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    const left = [...this.running.values()];
    const others = opts.handOver && left.length > 0 ? await store.liveReplicas(settings.replicaId, settings.leaseMs).catch(() => []) : [];
    if (others.length > 0) {
      log.info({ jobs: left.map((r) => r.snapshot.id), to: others }, "handing running jobs over to the other replicas");
      for (const r of left) {
        r.handingOver = true;
        r.stop.abort();
      }
      await all();
      await store.expireLeases(settings.replicaId, left.map((r) => r.snapshot.id)).catch((err) => log.warn({ err: String(err) }, "could not hand the jobs over; they are taken over when their leases run out"));
    } else {
      for (const r of left) {
        await store
          .requestCancel(r.snapshot.id, "cancelled: the service shut down before the job finished")
          .catch((err) => log.warn({ job: r.snapshot.id, err: String(err) }, "could not cancel at shutdown"));
        r.stop.abort();
      }
      await all();
    }
    this.timers.forEach(clearInterval);
    this.stopSampler();
    this.subscriptions.forEach((s) => s.unsubscribe());
  }

  private readonly finished = new Map<string, Promise<void>>();
  private settled(r: RunningJob): Promise<void> {
    return this.finished.get(r.snapshot.id) ?? Promise.resolve();
  }

  /**
   * Claims work while slots are free; one claim loop at a time. `news`: the queue may have
   * changed (a new job, another replica's wake-up, the poll); without it (a slot came free) the
   * store is asked only when the last claim did not find the queue empty.
   */
  private wake(news = true): void {
    if (!this.accepting) return;
    if (news) {
      this.news++;
      this.queueMayHaveWork = true;
    } else if (!this.queueMayHaveWork) {
      return;
    }
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = true;
    void this.claimLoop().finally(() => (this.claiming = false));
  }

  private async claimLoop(): Promise<void> {
    const { store, settings, log } = this.deps;
    try {
      do {
        this.claimAgain = false;
        while (this.accepting && this.running.size + this.reserved < settings.maxConcurrent) {
          const room = settings.maxConcurrent - this.running.size - this.reserved;
          const newsBefore = this.news;
          const jobs = await store.claim({ replica: settings.replicaId, max: room, leaseMs: settings.leaseMs, maxAttempts: settings.maxAttempts });
          jobs.forEach((j) => this.execute(j));
          // Fewer than asked for: the queue has nothing more for now (news says when it may).
          if (jobs.length < room) {
            if (this.news === newsBefore) this.queueMayHaveWork = false;
            break;
          }
        }
      } while (this.claimAgain && this.accepting);
    } catch (err) {
      log.warn({ err: String(err) }, "could not claim jobs from the store; trying again shortly");
    }
  }

  private exportLocation(reportId: string, queryId: string, kind: ResultKind): ObjectLocation {
    const { output } = this.deps.settings;
    return { bucket: output.bucket, key: exportKey(output.prefix, reportId, queryId, fileExtension(kind)) };
  }

  private execute(job: JobSnapshot): void {
    const { settings } = this.deps;
    const exportAt = this.exportLocation(job.reportId, job.queryId, job);
    const r: RunningJob = {
      snapshot: job,
      ref: { jobId: job.id, url: objectUrl(settings.clickhouseS3Endpoint, exportAt.bucket, exportAt.key) },
      exportAt,
      resultAt: { bucket: settings.storageBucket, key: `${job.id}.${fileExtension(job)}` },
      stop: new AbortController(),
      writes: Promise.resolve(),
      writing: undefined,
      figures: undefined,
      handingOver: false,
      attempt: job.attempt,
      telemetry: (this.deps.telemetry ?? NO_TELEMETRY).claimed(job),
    };
    this.running.set(job.id, r);
    const unfollow = this.deps.store.follow(job.id);
    this.logStatus(job, undefined);
    const done = this.run(r)
      .catch((err) => this.deps.log.error({ job: job.id, err: String((err as Error)?.stack ?? err) }, "job runner failed"))
      .finally(() => {
        unfollow();
        this.running.delete(job.id);
        this.finished.delete(job.id);
        // A slot is free. A job ended early (cancelled, superseded) also freed its export path,
        // which a waiting job of the same report and query may need: news, as a NOTIFY would be.
        this.wake(r.stop.signal.aborted);
      });
    this.finished.set(job.id, done);
  }

  private async run(r: RunningJob): Promise<void> {
    const { settings, store, log } = this.deps;
    const signal = r.stop.signal;
    // The limit covers the export and the copy: a copy that hangs (S3 silent) is stopped too.
    const timeoutMs = this.timeoutOf(r.snapshot);
    const timeout = setTimeout(() => void this.endEarly(r, JobStatus.FAILED, `${ranTooLong(timeoutMs, timeoutMs < settings.timeoutMs)} and was stopped`), timeoutMs);
    try {
      if (r.snapshot.attempt > 1) log.info({ job: r.snapshot.id, attempt: r.snapshot.attempt, status: JobStatus[r.snapshot.status] }, "running the job again: the replica that ran it stopped");
      if (r.snapshot.status === JobStatus.RUNNING && (await this.reuse(r))) return;
      signal.throwIfAborted();
      let reading: Promise<boolean> | undefined;
      if (r.snapshot.status === JobStatus.RUNNING) {
        r.telemetry.phase("export");
        await this.export(r);
        signal.throwIfAborted();
        // The copy starts beside this write (DONE is written after it, in order).
        reading = this.write(r, { status: JobStatus.READING_RESULTS });
      }
      r.telemetry.phase("copy");
      await this.copy(r, reading);
    } catch (err) {
      if (!signal.aborted) await this.write(r, { status: JobStatus.FAILED, error: this.describe(err) }, true);
    } finally {
      clearTimeout(timeout);
      if (signal.aborted && !r.handingOver) {
        // Ended by someone else, by the timeout or the shutdown: the export and copy have
        // stopped by now, and nothing may stay at result_uri.
        await this.removeResult(r);
        await store.release(r.snapshot.id, settings.replicaId).catch((err) => log.warn({ job: r.snapshot.id, err: String(err) }, "could not release the job"));
      }
      if (signal.aborted) {
        log.info({ job: r.snapshot.id, status: JobStatus[r.snapshot.status], handedOver: r.handingOver }, "job stopped here: its export and copy have ended");
      }
      r.telemetry.ended(r.snapshot);
    }
  }

  /** The job's own time limit (CreateJobRequest.timeout), at most CHJOB_JOB_TIMEOUT. */
  private timeoutOf(job: JobSnapshot): number {
    const own = job.limits.timeoutMs;
    return own > 0 ? Math.min(own, this.deps.settings.timeoutMs) : this.deps.settings.timeoutMs;
  }

  /**
   * Result reuse (CreateJobRequest.reuse_max_age): copies the newest matching DONE result that
   * still exists to this job's result object instead of running the query. False: none found.
   */
  private async reuse(r: RunningJob): Promise<boolean> {
    const job = r.snapshot;
    if (job.reuseMaxAgeMs === undefined) return false;
    const { store, objects, settings, log } = this.deps;
    const candidates = await store.reusable({
      queryHash: queryHash(checkQueryText(job.queryText, settings.maxQueryBytes)),
      kind: job,
      target: this.deps.engine.description,
      maxAgeMs: job.reuseMaxAgeMs,
      forJob: job.id,
    });
    for (const earlier of candidates) {
      const from = parseS3Uri(earlier.resultUri);
      // A result object deleted outside the service means no reuse, not a failure.
      if (!from || (await objects.size(from).catch(() => undefined)) === undefined) continue;
      if (!(await this.write(r, { status: JobStatus.READING_RESULTS }))) return true;
      r.telemetry.phase("copy");
      try {
        const { size } = await objects.copy(from, r.resultAt, r.stop.signal, objectHeaders(job));
        const done = await this.write(
          r,
          { status: JobStatus.DONE, resultUri: s3Uri(r.resultAt), resultSize: size, totalRows: earlier.totalRows, bytesProcessed: earlier.bytesProcessed, reusedFrom: earlier.id },
          true,
        );
        if (!done) r.stop.abort();
      } catch (err) {
        await this.removeResult(r);
        if (!r.stop.signal.aborted) await this.write(r, { status: JobStatus.FAILED, error: this.describe(err) }, true);
      }
      log.info({ job: job.id, reusedFrom: earlier.id }, "result reused");
      return true;
    }
    return false;
  }

  private async export(r: RunningJob): Promise<void> {
    const { engine, settings } = this.deps;
    const sql = exportSql(
      { endpoint: settings.clickhouseS3Endpoint, ...r.exportAt, accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
      checkQueryText(r.snapshot.queryText, settings.maxQueryBytes),
      clickhouseFormat(r.snapshot),
    );
    const { limits } = r.snapshot;
    const timeoutMs = this.timeoutOf(r.snapshot);
    this.deps.log.debug({ job: r.snapshot.id, sql }, "export statement");
    const exportSettings: ClickHouseSettings = {
      s3_truncate_on_insert: 1,
      ...settings.uploadSettings, // parts that reach S3's 5 TiB within its 10,000, and how many are in flight (../storage/parts.ts)
      // ClickHouse parses at most 256 KiB by default; every accepted query must fit with the s3() head.
      max_query_size: String(Math.max(262_144, settings.maxQueryBytes + 65_536)),
      // The server stops the query itself too, should this process be gone.
      max_execution_time: Math.ceil(timeoutMs / 1000),
      // Per-job guardrails: ClickHouse fails the query with a message naming the limit. Each is
      // sent on every export, 0 (none) included: chDB applies settings with SET on its session,
      // so a setting one export sent would otherwise stay for the next.
      max_rows_to_read: String(limits.maxRowsToRead ?? 0),
      max_bytes_to_read: String(limits.maxBytesToRead ?? 0),
      max_result_bytes: String(limits.maxResultBytes ?? 0),
      // Parquet compresses inside the file.
      output_format_parquet_compression_method: "zstd",
      // A run after a replica died: its export may still run on the server under the same query_id.
      ...(settings.serverSideExports ? { replace_running_query: r.snapshot.attempt > 1 ? 1 : 0 } : {}),
    };
    const running = engine.runExport(r.ref, sql, exportSettings, r.telemetry.headers());
    this.startSampler();
    const onStop = () => void this.killUntilStopped(r, running);
    r.stop.signal.addEventListener("abort", onStop, { once: true });
    try {
      const { figures } = await running;
      // Only measured figures: a progress sample is not final, and 0 would claim an empty result.
      r.figures = figures;
    } catch (err) {
      if (clickHouseCode(err) === 159) {
        throw new JobTimeoutError(`${ranTooLong(timeoutMs, timeoutMs < settings.timeoutMs)}: ${describeClickHouseError(err)}`);
      }
      throw err;
    } finally {
      r.stop.signal.removeEventListener("abort", onStop);
    }
  }

  /** Copies the export to the result object and writes DONE; `reading`: the READING_RESULTS write, still in flight. */
  private async copy(r: RunningJob, reading?: Promise<boolean>): Promise<void> {
    const measured = r.figures ?? Promise.resolve(NO_FIGURES);
    const cap = r.snapshot.limits.maxResultBytes;
    if (cap !== undefined) {
      const exported = (await measured).objectBytes ?? (await this.deps.objects.size(r.exportAt));
      if (exported !== undefined && exported > cap) {
        throw new ResultTooLargeError(`the result is ${exported} bytes, above max_result_bytes (${cap} bytes); it was not copied to the result object`);
      }
    }
    let size: number;
    try {
      // The export's size, when the engine measures it (beside the copy), spares the copy a HeadObject.
      const objectBytes = measured.then((f) => f.objectBytes);
      ({ size } = await this.deps.objects.copy(r.exportAt, r.resultAt, r.stop.signal, objectHeaders(r.snapshot), objectBytes));
    } catch (err) {
      await this.removeResult(r);
      throw err;
    }
    // READING_RESULTS not stored (the job ended elsewhere; the write stopped it): run()'s finally removes the result.
    if (reading && !(await reading)) {
      r.stop.abort();
      return;
    }
    const { writtenRows, readBytes } = await measured;
    const done = await this.write(r, { status: JobStatus.DONE, resultUri: s3Uri(r.resultAt), resultSize: size, totalRows: writtenRows, bytesProcessed: readBytes }, true);
    // Ended elsewhere between the copy and DONE: the finally of run() removes the result.
    if (!done) r.stop.abort();
  }

  private async removeResult(r: RunningJob): Promise<void> {
    await this.deps.objects.delete(r.resultAt).catch((err) =>
      this.deps.log.warn({ job: r.snapshot.id, err: this.describe(err) }, "could not remove the result object of an unfinished job"),
    );
  }

  /** Ends a running job early with `status` (timeout), then stops what it is doing. */
  private async endEarly(r: RunningJob, status: JobStatus.FAILED | JobStatus.CANCELLED, error: string): Promise<void> {
    if (r.stop.signal.aborted) return;
    await this.write(r, { status, error });
    r.stop.abort();
  }

  /** A state the store committed: one of ours ended by someone else stops here. */
  private onStoredState(s: JobSnapshot): void {
    const r = this.running.get(s.id);
    if (!r || s.version <= r.snapshot.version || s.version === r.writing) return;
    r.snapshot = s;
    if (isTerminal(s.status)) r.stop.abort();
    else if (s.replica !== this.deps.settings.replicaId || s.attempt !== r.attempt) this.leaveToOther(r);
  }

  /**
   * Writes the job's next state after its earlier writes; false when the job
   * ended or moved elsewhere meanwhile (the runner then stops it).
   */
  private write(r: RunningJob, change: StateChange, release = false): Promise<boolean> {
    const next = r.writes.then(async () => {
      const before = r.snapshot;
      if (change.status !== undefined && !canTransition(before.status, change.status)) return false;
      if (change.status === undefined && (before.status !== JobStatus.RUNNING || r.stop.signal.aborted)) return false;
      r.writing = before.version + 1;
      try {
        r.snapshot = await this.deps.store.write(before.id, before.version, change, { release });
      } catch (err) {
        if (!(err instanceof StaleStateError)) throw err;
        if (err.current && err.current.version > r.snapshot.version) r.snapshot = err.current;
        r.stop.abort();
        return false;
      } finally {
        r.writing = undefined;
      }
      if (change.status !== undefined) this.logStatus(r.snapshot, before);
      return true;
    });
    r.writes = next.catch(() => undefined);
    return next.catch((err) => {
      this.deps.log.error({ job: r.snapshot.id, err: String(err) }, "could not store the job's state");
      r.stop.abort();
      return false;
    });
  }

  private logStatus(after: JobSnapshot, before: JobSnapshot | undefined): void {
    const now = Date.now();
    this.deps.log.info(
      {
        job: after.id,
        report: after.reportId,
        query: after.queryId,
        status: JobStatus[after.status],
        ...(before ? { from: JobStatus[before.status], ms: now - before.updatedAt } : { attempt: after.attempt }),
        totalMs: now - after.createdAt,
        ...(after.error ? { error: after.error } : {}),
        ...(after.status === JobStatus.DONE ? { resultUri: after.resultUri, resultSize: after.resultSize, totalRows: after.totalRows } : {}),
      },
      "job status",
    );
  }

  /** Kills the export on the server, again every few seconds, until its promise settles or killWaitMs passes. */
  private async killUntilStopped(r: RunningJob, running: Promise<unknown>): Promise<void> {
    const { engine, settings, log } = this.deps;
    let settled = false;
    void running.then(
      () => (settled = true),
      () => (settled = true),
    );
    const deadline = Date.now() + settings.killWaitMs;
    while (!settled && Date.now() < deadline) {
      await engine.kill(r.ref).catch((err) => log.warn({ job: r.snapshot.id, err: this.describe(err) }, "KILL QUERY failed"));
      await Promise.race([running.catch(() => undefined), sleep(2000)]);
    }
    if (!settled) log.error({ job: r.snapshot.id }, "the export did not stop after KILL QUERY; its slot is released anyway");
  }

  /** Extends this replica's leases; a job whose lease another replica took over stops here. */
  private async renewLeases(): Promise<void> {
    const { store, settings, log } = this.deps;
    await store.heartbeat(settings.replicaId, this.draining).catch((err) => log.warn({ err: String(err) }, "could not record this replica's heartbeat"));
    if (this.running.size === 0) return;
    // Only jobs held since before the renewal can have lost their lease: one claimed meanwhile,
    // or one whose final write (it releases the job) commits meanwhile, is not in the answer.
    const before = new Map([...this.running].filter(([, r]) => r.writing === undefined).map(([id, r]) => [id, r.snapshot.version]));
    try {
      const held = new Set(await store.renewLeases(settings.replicaId, settings.leaseMs));
      for (const [id, version] of before) {
        const r = this.running.get(id);
        if (!r || held.has(id) || r.writing !== undefined || r.snapshot.version !== version || isTerminal(r.snapshot.status)) continue;
        const now = await store.get(id).catch(() => undefined);
        if (!now || isTerminal(now.status) || (now.replica === settings.replicaId && now.attempt === r.snapshot.attempt)) continue;
        log.warn({ job: id, now: now.replica }, "lost the job's lease to another replica; stopping here");
        this.leaveToOther(r);
      }
    } catch (err) {
      log.warn({ err: String(err) }, "could not renew leases");
    }
  }

  /** Stops a job that another replica runs now: no status write, no release, and its result object is theirs. */
  private leaveToOther(r: RunningJob): void {
    r.handingOver = true;
    r.stop.abort();
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

  /** One system.processes query for all running exports; changed progress is written to the store. */
  private async sample(): Promise<void> {
    if (this.sampling) return;
    const running = [...this.running.values()].filter((r) => r.snapshot.status === JobStatus.RUNNING && !r.stop.signal.aborted);
    if (running.length === 0) {
      this.stopSampler();
      return;
    }
    this.sampling = true;
    try {
      const samples = await this.deps.engine.sample(running.map((r) => r.ref));
      const writes: Array<Promise<boolean>> = [];
      for (const r of running) {
        const s = samples.get(r.snapshot.id);
        if (!s) continue;
        const cap = r.snapshot.limits.maxResultBytes;
        if (cap !== undefined && s.writtenBytes > cap) {
          // ClickHouse applies max_result_bytes to what a query returns, not to what an INSERT writes: watched here.
          void this.endEarly(r, JobStatus.FAILED, `the result passed max_result_bytes (${cap} bytes): ${s.writtenBytes} bytes were written when the export was stopped`);
          continue;
        }
        const progress = { rowsRead: s.rowsRead, bytesRead: s.bytesRead, totalRowsToRead: s.totalRowsToRead, elapsedMs: s.elapsedMs };
        if (progressIsNews(r.snapshot.progress, progress)) writes.push(this.write(r, { progress }));
      }
      // The next sample waits for these: a slow store gets fewer progress writes, not a pile of them.
      await Promise.all(writes);
    } catch (err) {
      this.deps.log.warn({ err: this.describe(err) }, "progress sample failed");
    } finally {
      this.sampling = false;
    }
  }

  /** A failure in words a person can act on, with no secret in it. */
  private describe(err: unknown): string {
    const text = err instanceof ObjectStoreError || err instanceof JobTimeoutError || err instanceof ResultTooLargeError ? err.message : describeClickHouseError(err);
    return this.deps.redact(text);
  }
}

/** What result reuse compares queries by: the checked statement, blank runs outside literals made one space. */
function queryHash(statement: string): string {
  return createHash("sha256").update(normalizeStatement(statement)).digest("base64url");
}

/** What makes two CreateJob requests with one request_id the same request. */
function requestHash(req: JobRequest): string {
  const { reportId, queryId, queryText, kind, limits, reuseMaxAgeMs } = req;
  return createHash("sha256")
    .update(JSON.stringify([reportId, queryId, queryText, kind.format, kind.compression, limits, reuseMaxAgeMs ?? null]))
    .digest("base64url");
}

/** The export wrote more than the job's max_result_bytes. */
class ResultTooLargeError extends Error {
  override readonly name = "ResultTooLargeError";
}

/** ClickHouse stopped the export at max_execution_time, which the runner sets from CHJOB_JOB_TIMEOUT. */
class JobTimeoutError extends Error {
  override readonly name = "JobTimeoutError";
}

function ranTooLong(timeoutMs: number, own = false): string {
  return `the job ran longer than ${own ? "its timeout" : "CHJOB_JOB_TIMEOUT"} (${formatMs(timeoutMs)})`;
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
