// A job's state as immutable snapshots, and the one place that decides which
// status changes are allowed.
import { JobStatus } from "../../gen/chjob/v1/job_service_pb.js";

export { JobStatus };

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
  /** Increases by one with every published state; lets stores and watchers order states. */
  readonly version: number;
}

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

export interface NewJob {
  id: string;
  reportId: string;
  queryId: string;
  queryText: string;
  exportUri: string;
  now: number;
}

export function newJob(job: NewJob): JobSnapshot {
  return Object.freeze({
    id: job.id,
    reportId: job.reportId,
    queryId: job.queryId,
    queryText: job.queryText,
    status: JobStatus.PENDING,
    error: "",
    resultUri: "",
    resultSize: 0,
    exportUri: job.exportUri,
    totalRows: undefined,
    bytesProcessed: undefined,
    progress: NO_PROGRESS,
    createdAt: job.now,
    updatedAt: job.now,
    version: 1,
  });
}

export type StatusChange = Partial<Pick<JobSnapshot, "error" | "resultUri" | "resultSize" | "totalRows" | "bytesProcessed" | "progress">>;

/** The next snapshot with a new status, or undefined when that change is not allowed. */
export function transition(job: JobSnapshot, status: JobStatus, change: StatusChange, now: number): JobSnapshot | undefined {
  if (!canTransition(job.status, status)) return undefined;
  return Object.freeze({ ...job, ...change, status, updatedAt: Math.max(now, job.updatedAt), version: job.version + 1 });
}

/** The next snapshot with new progress figures; undefined once the job has left RUNNING. */
export function withProgress(job: JobSnapshot, progress: JobProgress, now: number): JobSnapshot | undefined {
  if (job.status !== JobStatus.RUNNING) return undefined;
  const p = job.progress;
  if (p.rowsRead === progress.rowsRead && p.bytesRead === progress.bytesRead && p.totalRowsToRead === progress.totalRowsToRead && p.elapsedMs === progress.elapsedMs) {
    return undefined;
  }
  return Object.freeze({ ...job, progress: Object.freeze({ ...progress }), updatedAt: Math.max(now, job.updatedAt), version: job.version + 1 });
}
