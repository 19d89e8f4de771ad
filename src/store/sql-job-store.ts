// The job store in PostgreSQL's dialect, the same SQL on PGlite and on a
// PostgreSQL server. Every rule is one statement or one transaction; the
// version column makes each job's writes linear (a stale write is refused).
import { randomBytes } from "node:crypto";
import { Subject } from "rxjs";
import { UnavailableError } from "../errors.js";
import { isTerminal, JobStatus, NO_PROGRESS, type JobLimits, type JobProgress, type JobSnapshot, type StateChange } from "../jobs/job.js";
import type { ResultKind } from "../jobs/result-format.js";
import {
  StaleStateError,
  type ClaimOptions,
  type CreateOutcome,
  type JobStore,
  type ListPage,
  type ListQuery,
  type NewJobRecord,
  type QueueStats,
  type ReuseQuery,
  type WriteOptions,
} from "./job-store.js";
import { isTransient, quoteIdent, type Row, type SqlClient } from "./sql.js";

const COLUMNS = `id::text AS id, report_id, query_id, query_text, status, error, result_uri, result_size::float8 AS result_size,
  export_uri, total_rows::float8 AS total_rows, bytes_processed::float8 AS bytes_processed, progress,
  round(extract(epoch FROM created_at) * 1000)::float8 AS created_ms, round(extract(epoch FROM updated_at) * 1000)::float8 AS updated_ms,
  version, attempt, replica, coalesce(request_id, '') AS request_id,
  format, compression, content_type, limits, reuse_max_age_ms, reused_from, coalesce(trace_parent, '') AS trace_parent`;

const ACTIVE = `(${JobStatus.PENDING}, ${JobStatus.RUNNING}, ${JobStatus.READING_RESULTS})`;
const FINISHED = `(${JobStatus.DONE}, ${JobStatus.FAILED}, ${JobStatus.CANCELLED})`;

/** Column of each field a write may change. */
const WRITABLE: Record<keyof StateChange, string> = {
  status: "status",
  error: "error",
  resultUri: "result_uri",
  resultSize: "result_size",
  totalRows: "total_rows",
  bytesProcessed: "bytes_processed",
  progress: "progress",
  reusedFrom: "reused_from",
};

interface JobRow extends Row {
  id: string;
  report_id: string;
  query_id: string;
  query_text: string;
  status: number;
  error: string;
  result_uri: string;
  result_size: number;
  export_uri: string;
  total_rows: number | null;
  bytes_processed: number | null;
  progress: Partial<JobProgress> | null;
  created_ms: number;
  updated_ms: number;
  version: number;
  attempt: number;
  replica: string;
  request_id: string;
  format: number;
  compression: number;
  content_type: string;
  limits: JobLimits | null;
  reuse_max_age_ms: number | null;
  reused_from: string;
  trace_parent: string;
}

export interface SqlJobStoreOptions {
  /** Schema of the tables (already migrated). */
  schema: string;
  /** Longest pause between retries of a write while the database is unreachable. */
  maxRetryDelayMs?: number;
  /** Called when a write is retried (for the log). */
  onRetry?: (err: unknown, attempt: number) => void;
}

export class SqlJobStore implements JobStore {
  private readonly t: string;
  /** The schema, quoted: the store's tables and functions are in it. */
  private readonly schema: string;
  private readonly settings: string;
  private readonly history: string;
  private readonly replicas: string;
  private readonly changed = new Subject<JobSnapshot>();
  readonly changes = this.changed.asObservable();
  private readonly queue = new Subject<void>();
  readonly queueChanged = this.queue.asObservable();
  private readonly commits = new Subject<JobSnapshot>();
  readonly committed = this.commits.asObservable();
  /** Jobs followed here, with the newest version this store has emitted for each, and its query text once seen. */
  private readonly followed = new Map<string, { count: number; version: number; queryText?: string }>();
  /** Jobs being re-read after a notification; `again`: another came meanwhile. */
  private readonly refreshing = new Map<string, { again: boolean }>();
  private unlisten: (() => Promise<void>) | undefined;
  private closed = false;

  constructor(
    private readonly db: SqlClient,
    private readonly opts: SqlJobStoreOptions,
  ) {
    this.schema = quoteIdent(opts.schema);
    this.t = `${this.schema}.jobs`;
    this.settings = `${this.schema}.settings`;
    this.history = `${this.schema}.job_states`;
    this.replicas = `${this.schema}.replicas`;
  }

  get description(): string {
    return this.db.description;
  }

  /**
   * Subscribes to the schema's notifications (PostgreSQL: other replicas' writes). After a
   * lost connection it subscribes again and re-reads every followed job, so nothing is missed.
   */
  async listen(): Promise<void> {
    if (!this.db.listen) return;
    let first = true;
    this.unlisten = await this.db.listen(
      this.opts.schema,
      (payload) => this.onNotification(payload),
      () => {
        if (first) {
          first = false;
          return;
        }
        for (const id of this.followed.keys()) this.refresh(id);
        this.queue.next();
      },
    );
  }

  follow(id: string): () => void {
    const f = this.followed.get(id) ?? { count: 0, version: 0 };
    f.count++;
    this.followed.set(id, f);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--f.count === 0 && this.followed.get(id) === f) this.followed.delete(id);
    };
  }

  /**
   * "q:<sender>", "<id>:<version>:<sender>" or "<id>:<version>:<sender>:<state as JSON>" (the
   * triggers in src/store/migrations.ts). This client's own writes reached `changes` at commit.
   */
  private onNotification(payload: string): void {
    const own = this.db.sender;
    if (payload.startsWith("q:")) {
      if (payload.slice(2) !== own) this.queue.next();
      return;
    }
    const [id = "", version, sender] = payload.split(":", 3);
    if (sender === own) return;
    const f = this.followed.get(id);
    if (!f || Number(version) <= f.version) return;
    const stateAt = id.length + (version?.length ?? 0) + (sender?.length ?? 0) + 3;
    // The state came along: no read, unless this process has not seen the job's (unchanging) query text yet.
    if (payload.length > stateAt && f.queryText !== undefined) {
      try {
        this.emit(toSnapshot(fromHistory(JSON.parse(payload.slice(stateAt)) as Record<string, unknown>, f.queryText)), false);
        return;
      } catch {
        // Not the shape this version writes (a newer replica's?): read the job instead.
      }
    }
    this.refresh(id);
  }

  /** Reads a followed job again and emits it if it is newer than what was emitted; one read at a time per job. */
  private refresh(id: string): void {
    const running = this.refreshing.get(id);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.refreshing.set(id, state);
    void (async () => {
      try {
        do {
          state.again = false;
          const job = await this.get(id).catch(() => undefined);
          if (job) this.emit(job, false);
        } while (state.again && !this.closed);
      } finally {
        this.refreshing.delete(id);
      }
    })();
  }

  /** `own`: committed by this process (else read for a followed job). */
  private emit(job: JobSnapshot, own = true): void {
    if (own && !this.closed) this.commits.next(job);
    const f = this.followed.get(job.id);
    if (f) {
      f.queryText = job.queryText;
      if (job.version <= f.version) return;
      f.version = job.version;
    }
    if (!this.closed) this.changed.next(job);
  }

  async statesBetween(id: string, after: number, before: number): Promise<JobSnapshot[]> {
    const rows = await this.reading(() =>
      this.db.query<{ state: Record<string, unknown>; query_text: string }>(
        `SELECT h.state, j.query_text FROM ${this.history} h JOIN ${this.t} j ON j.id = h.job_id
         WHERE h.job_id = $1::uuid AND h.version > $2::int AND h.version < $3::int ORDER BY h.version`,
        [id, after, before],
      ),
    );
    return rows.map(({ state, query_text }) => toSnapshot(fromHistory(state, query_text)));
  }

  async create(job: NewJobRecord, queueLimit: number, claimFor?: { replica: string; leaseMs: number }): Promise<CreateOutcome> {
    // The whole rule is the create_job function (src/store/migrations.ts): one round trip.
    const rows = await this.reading(() =>
      this.db.query<JobRow & { request_hash: string | null }>(
        `SELECT ${COLUMNS}, request_hash FROM ${this.schema}.create_job($1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text,
           $8::smallint, $9::smallint, $10::text, $11::text::jsonb, $12::float8, $13::text, $14::text, $15::text, $16::int, $17::text, $18::float8)`,
        [
          job.id,
          job.reportId,
          job.queryId,
          job.queryText,
          job.exportUri,
          job.requestId ?? null,
          job.requestHash ?? null,
          job.kind.format,
          job.kind.compression,
          job.contentType,
          JSON.stringify(job.limits),
          job.reuseMaxAgeMs ?? null,
          job.queryHash,
          job.target,
          job.traceParent || null,
          queueLimit,
          claimFor?.replica ?? null,
          claimFor?.leaseMs ?? null,
        ],
      ),
    );
    // The new job's rows: as inserted (PENDING), then as claimed here (RUNNING), if it was.
    const [created, claimedRow] = rows.filter((r) => r.id === job.id).sort((a, b) => Number(a.version) - Number(b.version));
    if (!created) {
      const [seen] = rows;
      if (!seen) return { kind: "queue-full", pending: await this.pendingCount() };
      return { kind: seen.request_hash === job.requestHash ? "existing" : "conflict", job: toSnapshot(seen) };
    }
    const superseded = rows.filter((r) => r.id !== job.id).map(toSnapshot);
    const snapshot = toSnapshot(created);
    const claimed = claimedRow && toSnapshot(claimedRow);
    superseded.forEach((s) => this.emit(s));
    this.emit(snapshot);
    if (claimed) this.emit(claimed);
    return { kind: "created", job: snapshot, superseded, ...(claimed ? { claimed } : {}) };
  }

  async get(id: string): Promise<JobSnapshot | undefined> {
    const [row] = await this.reading(() => this.db.query<JobRow>(`SELECT ${COLUMNS} FROM ${this.t} WHERE id = $1::uuid`, [id]));
    const f = row && this.followed.get(id);
    if (f) f.queryText = row.query_text;
    return row && toSnapshot(row);
  }

  async list({ reportId, limit, after }: ListQuery): Promise<ListPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (reportId !== undefined) where.push(`report_id = $${params.push(reportId)}`);
    if (after !== undefined) where.push(`seq < $${params.push(after)}::bigint`);
    // The position is not called `seq`: ORDER BY would take that output column (text, where '9' > '10').
    const rows = await this.reading(() =>
      this.db.query<JobRow & { position: string }>(
        `SELECT ${COLUMNS}, seq::text AS position FROM ${this.t} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
         ORDER BY seq DESC LIMIT $${params.push(limit + 1)}::int`,
        params,
      ),
    );
    const page = rows.slice(0, limit);
    return { jobs: page.map(toSnapshot), next: rows.length > limit ? page.at(-1)!.position : undefined };
  }

  async reusable(q: ReuseQuery): Promise<JobSnapshot[]> {
    const rows = await this.reading(() =>
      this.db.query<JobRow>(
        `SELECT ${COLUMNS} FROM ${this.t}
         WHERE query_hash = $1 AND format = $2::smallint AND compression = $3::smallint AND target = $4 AND status = ${JobStatus.DONE}
           AND updated_at > clock_timestamp() - $5::float8 * interval '1 millisecond' AND id <> $6::uuid
         ORDER BY updated_at DESC LIMIT 3`,
        [q.queryHash, q.kind.format, q.kind.compression, q.target, q.maxAgeMs, q.forJob],
      ),
    );
    return rows.map(toSnapshot);
  }

  async pendingCount(): Promise<number> {
    const [row] = await this.reading(() => this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.t} WHERE status = ${JobStatus.PENDING}`));
    return row?.n ?? 0;
  }

  async queueStats(): Promise<QueueStats> {
    // Both parts read the pending index (jobs_pending: seq WHERE status = PENDING); seq order is creation order.
    const [row] = await this.reading(() =>
      this.db.query<{ pending: number; oldest_ms: number | null }>(
        `SELECT (SELECT count(*)::int FROM ${this.t} WHERE status = ${JobStatus.PENDING}) AS pending,
           (SELECT (extract(epoch FROM clock_timestamp() - created_at) * 1000)::float8 FROM ${this.t}
            WHERE status = ${JobStatus.PENDING} ORDER BY seq LIMIT 1) AS oldest_ms`,
      ),
    );
    return { pending: Number(row?.pending ?? 0), oldestPendingAgeMs: Math.max(0, Number(row?.oldest_ms ?? 0)) };
  }

  async claim({ replica, max, leaseMs, maxAttempts }: ClaimOptions): Promise<JobSnapshot[]> {
    if (max <= 0) return [];
    // The claim_jobs function (src/store/migrations.ts): orphans first, then FIFO; one round trip.
    const rows = await this.reading(() =>
      this.db.query<JobRow & { seq: string }>(`SELECT ${COLUMNS}, seq FROM ${this.schema}.claim_jobs($1::text, $2::int, $3::float8, $4::int)`, [
        replica,
        max,
        leaseMs,
        maxAttempts,
      ]),
    );
    // A terminal row is an orphan that ran out of attempts (FAILED); the rest are this replica's now.
    const ended = rows.filter((r) => isTerminal(Number(r.status))).map(toSnapshot);
    const claimed = rows
      .filter((r) => !isTerminal(Number(r.status)))
      .sort((a, b) => Number(a.seq) - Number(b.seq))
      .map(toSnapshot);
    ended.forEach((s) => this.emit(s));
    claimed.forEach((s) => this.emit(s));
    return claimed;
  }

  async write(id: string, fromVersion: number, change: StateChange, opts: WriteOptions = {}): Promise<JobSnapshot> {
    const sets: string[] = ["version = version + 1", "updated_at = clock_timestamp()"];
    const params: unknown[] = [id, fromVersion];
    for (const [field, value] of Object.entries(change) as Array<[keyof StateChange, unknown]>) {
      const column = WRITABLE[field];
      if (!column) continue;
      // progress goes as JSON text: typed jsonb, the postgres driver would JSON-encode the text again (a jsonb string).
      const cast = column === "progress" ? "::text::jsonb" : column === "status" ? "::smallint" : /size|rows|bytes/.test(column) ? "::bigint" : "";
      sets.push(`${column} = $${params.push(column === "progress" ? JSON.stringify(value) : (value ?? null))}${cast}`);
    }
    if (opts.release) sets.push("owner = NULL", "lease_until = NULL");
    const sql = `UPDATE ${this.t} SET ${sets.join(", ")} WHERE id = $1::uuid AND version = $2::int RETURNING ${COLUMNS}`;
    let retried = false;
    for (let attempt = 1; ; attempt++) {
      try {
        const [row] = await this.db.query<JobRow>(sql, params);
        if (row) {
          const next = toSnapshot(row);
          this.emit(next);
          return next;
        }
        const current = await this.get(id);
        // A retried write whose first try committed before the connection broke.
        if (retried && current && current.version === fromVersion + 1 && (change.status === undefined || current.status === change.status)) {
          if (!this.closed) this.commits.next(current);
          return current;
        }
        throw new StaleStateError(id, current);
      } catch (err) {
        if (this.closed || !isTransient(err)) throw err;
        retried = true;
        this.opts.onRetry?.(err, attempt);
        await sleep(Math.min(100 * 2 ** (attempt - 1), this.opts.maxRetryDelayMs ?? 2000));
      }
    }
  }

  async requestCancel(id: string, reason: string): Promise<JobSnapshot | undefined> {
    const [row] = await this.reading(() =>
      this.db.query<JobRow>(
        `UPDATE ${this.t} SET status = ${JobStatus.CANCELLED}, error = $2, version = version + 1, updated_at = clock_timestamp(),
           owner = CASE WHEN status = ${JobStatus.PENDING} THEN NULL ELSE owner END
         WHERE id = $1::uuid AND status IN ${ACTIVE} RETURNING ${COLUMNS}`,
        [id, reason],
      ),
    );
    if (!row) return this.get(id);
    const next = toSnapshot(row);
    this.emit(next);
    return next;
  }

  async release(id: string, replica: string): Promise<void> {
    await this.retrying(() => this.db.query(`UPDATE ${this.t} SET owner = NULL, lease_until = NULL WHERE id = $1::uuid AND owner = $2`, [id, replica]));
  }

  async renewLeases(replica: string, leaseMs: number): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `UPDATE ${this.t} SET lease_until = clock_timestamp() + $2::float8 * interval '1 millisecond' WHERE owner = $1 RETURNING id::text AS id`,
      [replica, leaseMs],
    );
    return rows.map((r) => r.id);
  }

  async expireLeases(owner: string | undefined, ids?: string[]): Promise<number> {
    const where = ["owner IS NOT NULL"];
    const params: unknown[] = [];
    if (owner !== undefined) where.push(`owner = $${params.push(owner)}`);
    if (ids !== undefined) where.push(`id = ANY($${params.push(ids)}::uuid[])`);
    // Through jobs_orphans (the few owned jobs, in seq order): without statistics (PGlite has no
    // autovacuum) a plain WHERE owner IS NOT NULL scanned every stored job at each start.
    const rows = await this.db.query<{ id: string }>(
      `UPDATE ${this.t} SET lease_until = clock_timestamp() - interval '1 millisecond'
       WHERE id IN (SELECT id FROM ${this.t} WHERE ${where.join(" AND ")} ORDER BY seq LIMIT 100000) RETURNING id::text AS id`,
      params,
    );
    return rows.length;
  }

  async heartbeat(replica: string, draining: boolean): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.replicas} (id, seen_at, draining) VALUES ($1, clock_timestamp(), $2)
       ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, draining = excluded.draining`,
      [replica, draining],
    );
  }

  async liveReplicas(except: string, withinMs: number): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM ${this.replicas} WHERE id <> $1 AND NOT draining AND seen_at > clock_timestamp() - $2::float8 * interval '1 millisecond' ORDER BY id`,
      [except, withinMs],
    );
    return rows.map((r) => r.id);
  }

  async deleteExpired(retentionMs: number): Promise<number> {
    const batch = 1000;
    // now(), not clock_timestamp(): a stable cutoff is an index condition on jobs_finished; a volatile one read every finished job.
    let total = 0;
    for (;;) {
      const rows = await this.db.query<{ id: string }>(
        `DELETE FROM ${this.t} WHERE id IN (
           SELECT id FROM ${this.t} WHERE status IN ${FINISHED} AND owner IS NULL AND updated_at < now() - $1::float8 * interval '1 millisecond'
           ORDER BY updated_at LIMIT ${batch}) RETURNING id::text AS id`,
        [retentionMs],
      );
      total += rows.length;
      if (rows.length < batch) return total;
    }
  }

  async maintain(): Promise<void> {
    if (!this.db.needsVacuum) return;
    for (const table of [this.t, this.history]) await this.db.query(`VACUUM (ANALYZE) ${table}`);
  }

  async ping(): Promise<void> {
    await this.reading(() => this.db.query("SELECT 1"));
  }

  async pageTokenKey(): Promise<Buffer> {
    await this.db.query(`INSERT INTO ${this.settings} (name, value) VALUES ('page_token_key', $1) ON CONFLICT (name) DO NOTHING`, [randomBytes(32).toString("base64")]);
    const [row] = await this.db.query<{ value: string }>(`SELECT value FROM ${this.settings} WHERE name = 'page_token_key'`);
    return Buffer.from(row!.value, "base64");
  }

  async close(): Promise<void> {
    this.closed = true;
    this.changed.complete();
    this.queue.complete();
    this.commits.complete();
    await this.unlisten?.().catch(() => undefined);
    await this.db.close();
  }

  /** Runs a read or a caller's transaction; a database that is away becomes UNAVAILABLE for the caller. */
  private async reading<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      if (isTransient(err)) throw new UnavailableError(`the job store (${this.db.description}) is unreachable: ${describe(err)}; retry shortly`);
      throw err;
    }
  }

  /** Runs an idempotent statement until it goes through (or the store closes). */
  private async retrying<T>(body: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await body();
      } catch (err) {
        if (this.closed || !isTransient(err)) throw err;
        this.opts.onRetry?.(err, attempt);
        await sleep(Math.min(100 * 2 ** (attempt - 1), this.opts.maxRetryDelayMs ?? 2000));
      }
    }
  }
}

function toSnapshot(r: JobRow): JobSnapshot {
  const p = r.progress ?? {};
  return Object.freeze({
    id: r.id,
    reportId: r.report_id,
    queryId: r.query_id,
    queryText: r.query_text,
    status: Number(r.status) as JobStatus,
    error: r.error,
    resultUri: r.result_uri,
    resultSize: Number(r.result_size),
    exportUri: r.export_uri,
    totalRows: r.total_rows === null ? undefined : Number(r.total_rows),
    bytesProcessed: r.bytes_processed === null ? undefined : Number(r.bytes_processed),
    progress:
      p.rowsRead === undefined
        ? NO_PROGRESS
        : Object.freeze({ rowsRead: p.rowsRead, bytesRead: p.bytesRead ?? 0, totalRowsToRead: p.totalRowsToRead ?? 0, elapsedMs: p.elapsedMs ?? 0 }),
    createdAt: Number(r.created_ms),
    updatedAt: Number(r.updated_ms),
    version: Number(r.version),
    attempt: Number(r.attempt),
    replica: r.replica,
    requestId: r.request_id,
    format: Number(r.format ?? 1) as ResultKind["format"],
    compression: Number(r.compression ?? 1) as ResultKind["compression"],
    contentType: r.content_type ?? "",
    limits: Object.freeze({ ...(r.limits ?? { timeoutMs: 0 }) }) as JobLimits,
    reuseMaxAgeMs: r.reuse_max_age_ms === null || r.reuse_max_age_ms === undefined ? undefined : Number(r.reuse_max_age_ms),
    reusedFrom: r.reused_from ?? "",
    traceParent: r.trace_parent ?? "",
  });
}

/** A job_states entry (to_jsonb of the row then, without the query text) as a row of COLUMNS. */
function fromHistory(state: Record<string, unknown>, queryText: string): JobRow {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: String(state.id),
    report_id: String(state.report_id),
    query_id: String(state.query_id),
    query_text: queryText,
    status: Number(state.status),
    error: String(state.error ?? ""),
    result_uri: String(state.result_uri ?? ""),
    result_size: Number(state.result_size ?? 0),
    export_uri: String(state.export_uri),
    total_rows: num(state.total_rows),
    bytes_processed: num(state.bytes_processed),
    progress: (state.progress as Partial<JobProgress> | null) ?? null,
    created_ms: epochMs(state.created_at),
    updated_ms: epochMs(state.updated_at),
    version: Number(state.version),
    attempt: Number(state.attempt),
    replica: String(state.replica ?? ""),
    request_id: String(state.request_id ?? ""),
    format: Number(state.format ?? 1),
    compression: Number(state.compression ?? 1),
    content_type: String(state.content_type ?? ""),
    limits: (state.limits as JobLimits | null) ?? null,
    reuse_max_age_ms: num(state.reuse_max_age_ms),
    reused_from: String(state.reused_from ?? ""),
    trace_parent: String(state.trace_parent ?? ""),
  };
}

/** A timestamptz as to_jsonb writes it (microseconds) in ms, rounded as COLUMNS rounds it. */
function epochMs(value: unknown): number {
  const m = /^(.*[T ]\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(String(value));
  if (!m) return Date.parse(String(value));
  const micros = Number((m[2] ?? "").padEnd(6, "0").slice(0, 6));
  return Date.parse(`${m[1]}${m[3]}`) + Math.floor(micros / 1000) + (micros % 1000 >= 500 ? 1 : 0);
}

function describe(err: unknown): string {
  const e = err as Error & { code?: string };
  return e.code ? `${e.message} (${e.code})` : String(e?.message ?? err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
