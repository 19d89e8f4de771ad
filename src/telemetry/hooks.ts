// What the job runner tells telemetry (metrics and traces), as a few calls at
// the points of a job's life. The runner knows nothing of Prometheus or
// OpenTelemetry; without telemetry every call is a no-op (NO_TELEMETRY).
import type { JobSnapshot } from "../jobs/job.js";

/** The phases of a job's life, as metrics label them and spans are named. */
export type JobPhase = "queue" | "export" | "copy";

export interface RunnerTelemetry {
  /**
   * CreateJob, before the job is stored, inside the call's context: the W3C traceparent to store
   * with the job (undefined: none), so that whichever replica runs it continues the call's trace.
   */
  creating(jobId: string): string | undefined;
  /** A job this replica claimed (a fresh claim or a run again) starts running here. */
  claimed(job: JobSnapshot): JobRunTelemetry;
}

/** One run of one job on this replica. */
export interface JobRunTelemetry {
  /** The run enters `phase`; the phase before it ends. */
  phase(phase: Exclude<JobPhase, "queue">): void;
  /** HTTP headers that carry the current phase's trace context to ClickHouse (none when tracing is off). */
  headers(): Record<string, string>;
  /** The run stopped here; `job` as this replica last knew it: terminal, or not (handed over, lease lost). */
  ended(job: JobSnapshot): void;
}

const NO_RUN: JobRunTelemetry = { phase: () => undefined, headers: () => ({}), ended: () => undefined };

export const NO_TELEMETRY: RunnerTelemetry = { creating: () => undefined, claimed: () => NO_RUN };

/** Several telemetries as one: each hears every call; the first traceparent and all headers win. */
export function combineTelemetry(parts: RunnerTelemetry[]): RunnerTelemetry {
  if (parts.length === 0) return NO_TELEMETRY;
  if (parts.length === 1) return parts[0]!;
  return {
    creating: (jobId) => parts.map((p) => p.creating(jobId)).find((t) => t !== undefined),
    claimed: (job) => {
      const runs = parts.map((p) => p.claimed(job));
      return {
        phase: (phase) => runs.forEach((r) => r.phase(phase)),
        headers: () => Object.assign({}, ...runs.map((r) => r.headers())) as Record<string, string>,
        ended: (j) => runs.forEach((r) => r.ended(j)),
      };
    },
  };
}

/** `t` with every call's failure reported to `onError` and swallowed: telemetry never stops a job. */
export function guarded(t: RunnerTelemetry, onError: (err: unknown) => void): RunnerTelemetry {
  const safe = <A extends unknown[], R>(fn: (...args: A) => R, fallback: R) => (...args: A): R => {
    try {
      return fn(...args);
    } catch (err) {
      onError(err);
      return fallback;
    }
  };
  return {
    creating: safe((jobId: string) => t.creating(jobId), undefined),
    claimed: safe((job) => {
      const run = t.claimed(job);
      return {
        phase: safe((phase: Exclude<JobPhase, "queue">) => run.phase(phase), undefined),
        headers: safe(() => run.headers(), {}),
        ended: safe((j: JobSnapshot) => run.ended(j), undefined),
      };
    }, NO_RUN),
  };
}

