// A job's state as immutable snapshots, and the one place that decides which
// status changes are allowed.
import { JobStatus } from "../../gen/chjob/v1/job_service_pb.js";
import type { ResultKind } from "./result-format.js";

export { JobStatus };

/** Limits of one job: ClickHouse enforces the first three as query settings. */
export interface JobLimits {
  maxRowsToRead?: number;
  maxBytesToRead?: number;
  maxResultBytes?: number;
  /** The job's own limit, at most CHJOB_JOB_TIMEOUT. */
  timeoutMs: number;
}

export interface JobProgress {
  readonly rowsRead: number;
  readonly bytesRead: number;
  readonly totalRowsToRead: number;
  readonly elapsedMs: number;
}

export interface JobSnapshot {
  readonly id: string;
  readonly reportId: string;
  readonly queryId: string;
  readonly queryText: string;
  readonly status: JobStatus;
  readonly error: string;
  readonly resultUri: string;
  readonly resultSize: number;
  readonly exportUri: string;
  /** Rows the export wrote; undefined when the engine did not measure it. */
  readonly totalRows: number | undefined;
  /** Bytes the export read; undefined when the engine did not measure it. */
  readonly bytesProcessed: number | undefined;
  readonly progress: JobProgress;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Increases by one with every stored state; lets the store reject stale writes and watchers order states. */
  readonly version: number;
  /** Runs of the job so far (0 while it waits; one more for each re-run after its replica died). */
  readonly attempt: number;
  /** The replica that runs or last ran the job; "" before any has. */
  readonly replica: string;
  /** The CreateJob request_id that made it; "" for none. */
  readonly requestId: string;
  readonly format: ResultKind["format"];
  readonly compression: ResultKind["compression"];
  /** Content-Type of the result object. */
  readonly contentType: string;
  readonly limits: Readonly<JobLimits>;
  /** Reuse a DONE result this young instead of running the query; undefined: never. */
  readonly reuseMaxAgeMs: number | undefined;
  /** The job whose result this one copied; "" when it ran the query. */
  readonly reusedFrom: string;
  /** W3C traceparent of the CreateJob call that made it (tracing on); "" for none. */
  readonly traceParent: string;
}

/** A job id: the lower-case UUID that CreateJob gives. */
export const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const NO_PROGRESS: JobProgress = Object.freeze({ rowsRead: 0, bytesRead: 0, totalRowsToRead: 0, elapsedMs: 0 });

const TERMINAL = new Set([JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED]);

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL.has(status);
}

/** Allowed next statuses. Never backwards; terminal states are final. */
const NEXT: Record<JobStatus, readonly JobStatus[]> = {
  [JobStatus.UNSPECIFIED]: [],
  [JobStatus.PENDING]: [JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED],
  [JobStatus.RUNNING]: [JobStatus.READING_RESULTS, JobStatus.FAILED, JobStatus.CANCELLED],
  [JobStatus.READING_RESULTS]: [JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED],
  [JobStatus.DONE]: [],
  [JobStatus.FAILED]: [],
  [JobStatus.CANCELLED]: [],
};

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return NEXT[from].includes(to);
}

/** What one write may change: a status (with the fields that come with it) and/or progress. */
export type StateChange = Partial<Pick<JobSnapshot, "status" | "error" | "resultUri" | "resultSize" | "totalRows" | "bytesProcessed" | "progress" | "reusedFrom">>;

/** How far a query's clock must move, with nothing else changed, before a progress sample is news. */
export const ELAPSED_ONLY_PROGRESS_MS = 5000;

/**
 * Whether a progress sample is worth a store write (and a message to every watcher): something
 * was read, or, for a query reading nothing for a while (a sleep, a slow source), its clock moved
 * ELAPSED_ONLY_PROGRESS_MS since the stored sample, which shows it is alive.
 */
export function progressIsNews(stored: JobProgress, sample: JobProgress): boolean {
  if (stored.rowsRead !== sample.rowsRead || stored.bytesRead !== sample.bytesRead || stored.totalRowsToRead !== sample.totalRowsToRead) return true;
  return sample.elapsedMs - stored.elapsedMs >= ELAPSED_ONLY_PROGRESS_MS;
}
