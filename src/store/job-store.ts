// The job store: where every job's state lives, and the one owner of every
// rule that spans jobs or processes (supersede, queue bound, claims, cancel
// requests, leases, retention). Each rule is one transaction, so replicas on
// one database, and a process restarted on the same data, agree on it.
import type { Observable } from "rxjs";
import type { JobLimits, JobSnapshot, StateChange } from "../jobs/job.js";
import type { ResultKind } from "../jobs/result-format.js";

export interface NewJobRecord {
  id: string;
  reportId: string;
  queryId: string;
  queryText: string;
  exportUri: string;
  /** CreateJob's request_id, or undefined. */
  requestId: string | undefined;
  /** Fingerprint of the request that carries `requestId`: the same id with another request is refused. */
  requestHash: string | undefined;
  kind: ResultKind;
  contentType: string;
  limits: JobLimits;
  reuseMaxAgeMs: number | undefined;
  /** Hash of the normalised query text (result reuse). */
  queryHash: string;
  /** The ClickHouse the job runs on, for result reuse: results of other targets are not reused. */
  target: string;
  /** W3C traceparent of the CreateJob call (tracing on): the job's phase spans continue it, on any replica. */
  traceParent?: string;
}

/** The shared queue at a glance (metrics): the same on every replica. */
export interface QueueStats {
  /** Jobs waiting in PENDING, service-wide. */
  pending: number;
  /** Age of the oldest PENDING job by the database's clock; 0 when none waits. */
  oldestPendingAgeMs: number;
}

/** What makes an earlier result reusable for a job. */
export interface ReuseQuery {
  queryHash: string;
  kind: ResultKind;
  target: string;
  maxAgeMs: number;
  /** The job asking (never its own result). */
  forJob: string;
}

export type CreateOutcome =
  /** Stored; `superseded` are the earlier active jobs of the same (report_id, query_id), now CANCELLED. */
  | { kind: "created"; job: JobSnapshot; superseded: JobSnapshot[]; claimed?: JobSnapshot }
  /** The request_id was seen before with the same request: that job. */
  | { kind: "existing"; job: JobSnapshot }
  /** The request_id belongs to a job made by another request. */
  | { kind: "conflict"; job: JobSnapshot }
  /** `pending` jobs wait already, at or beyond the limit: nothing stored. */
  | { kind: "queue-full"; pending: number };

export interface ListQuery {
  /** Only this report's jobs; undefined for all. */
  reportId: string | undefined;
  limit: number;
  /** The `next` of the previous page. */
  after: string | undefined;
}

export interface ListPage {
  /** Newest first. */
  jobs: JobSnapshot[];
  /** Position after this page's last job; undefined on the last page. */
  next: string | undefined;
}

export interface ClaimOptions {
  replica: string;
  /** At most this many jobs. */
  max: number;
  leaseMs: number;
  /** A job whose replica died this many runs in a row ends FAILED instead of running again. */
  maxAttempts: number;
}

export interface WriteOptions {
  /** The export and copy have stopped: the job's export path is free for the next job of its key. */
  release?: boolean;
}

/** A write found the job at another version than the writer's (cancelled, superseded, taken over) or gone. */
export class StaleStateError extends Error {
  override readonly name = "StaleStateError";
  constructor(
    readonly id: string,
    /** The job as stored now; undefined when it no longer exists. */
    readonly current: JobSnapshot | undefined,
  ) {
    super(`job ${id} changed underneath the writer (now ${current ? `version ${current.version}` : "gone"})`);
  }
}

export interface JobStore {
  /** For logs and messages: where the store is, with no credentials. */
  readonly description: string;
  /**
   * Committed states of jobs: every one this process writes, as it commits, and, for jobs
   * followed here (follow()), the newest state another replica wrote. A consumer that sees a
   * version jump fills the statuses between with statesBetween().
   */
  readonly changes: Observable<JobSnapshot>;
  /** Fires when the shared queue may have work for this replica (a new job, a freed export path, an ended lease). */
  readonly queueChanged: Observable<void>;
  /**
   * The states this process committed, each once, as it commits (not those read for follow()):
   * every state change is committed by exactly one process, so counts summed over replicas are exact.
   */
  readonly committed: Observable<JobSnapshot>;
  /** Asks for other replicas' writes of this job in `changes`; returns the call that stops it. */
  follow(id: string): () => void;
  /** The job's status changes (and new attempts) after version `after` and before `before`, in order. */
  statesBetween(id: string, after: number, before: number): Promise<JobSnapshot[]>;

  /**
   * Stores a new PENDING job, superseding the active job of its (report_id, query_id); bounded by
   * `queueLimit` waiting jobs. With `claimFor` (the caller has a free slot) the same transaction
   * also claims it for that replica when no other job waits and its export path is free: the
   * outcome's `claimed` is then its RUNNING state.
   */
  create(job: NewJobRecord, queueLimit: number, claimFor?: { replica: string; leaseMs: number }): Promise<CreateOutcome>;
  get(id: string): Promise<JobSnapshot | undefined>;
  list(query: ListQuery): Promise<ListPage>;
  /** Jobs now waiting for a slot, service-wide. */
  pendingCount(): Promise<number>;
  /** PENDING jobs and the oldest one's age, service-wide: one query on the pending index. */
  queueStats(): Promise<QueueStats>;
  /** DONE jobs whose results a job may reuse, newest first (a few): one query on an index. */
  reusable(query: ReuseQuery): Promise<JobSnapshot[]>;

  /**
   * Takes work for a replica, FIFO: jobs whose replica stopped renewing its lease
   * first (run again, or FAILED after maxAttempts), then the oldest PENDING jobs whose
   * export path is free. Returns the jobs the replica now runs, each at attempt + 1.
   */
  claim(opts: ClaimOptions): Promise<JobSnapshot[]>;
  /**
   * Writes the next state of a job, if it is still at `fromVersion`; throws
   * StaleStateError otherwise. Retried while the database is unreachable.
   */
  write(id: string, fromVersion: number, change: StateChange, opts?: WriteOptions): Promise<JobSnapshot>;
  /** Ends an active job CANCELLED with `reason`; a finished job is returned as it is; undefined if none. */
  requestCancel(id: string, reason: string): Promise<JobSnapshot | undefined>;
  /** The replica no longer runs anything for the job (after it stopped its export and copy). */
  release(id: string, replica: string): Promise<void>;
  /** Extends the leases of the replica's jobs; returns the ids it still holds. */
  renewLeases(replica: string, leaseMs: number): Promise<string[]>;
  /**
   * Ends the leases of `owner`'s jobs now (every owner's when undefined; only `ids` when given):
   * they are orphans, which the next claim of any replica takes over.
   */
  expireLeases(owner: string | undefined, ids?: string[]): Promise<number>;
  /** Records that `replica` is alive (and whether it is stopping). */
  heartbeat(replica: string, draining: boolean): Promise<void>;
  /** Other replicas seen within `withinMs` that are not stopping. */
  liveReplicas(except: string, withinMs: number): Promise<string[]>;
  /** Deletes finished jobs that ended more than `retentionMs` ago; returns how many. */
  deleteExpired(retentionMs: number): Promise<number>;
  /**
   * What a database without autovacuum (PGlite) needs now and then: dead row versions removed and
   * statistics for the planner (VACUUM (ANALYZE)). Nothing on a PostgreSQL server, whose autovacuum does it.
   */
  maintain(): Promise<void>;
  /** Throws when the store does not answer (health). */
  ping(): Promise<void>;
  /** A secret kept in the store, made on first use: it signs page tokens, so they survive restarts and work on every replica. */
  pageTokenKey(): Promise<Buffer>;
  close(): Promise<void>;
}
