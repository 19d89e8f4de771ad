// Messages between the bench (parent) and the floor process (bench/floor.ts),
// over node's IPC channel.
import type { ClickHouseSettings } from "@clickhouse/client";

/** One job as both sides run it: the export of `sql` to <prefix>/<reportId>/<queryId>/result.csv, then a copy. */
export interface JobSpec {
  reportId: string;
  queryId: string;
  sql: string;
}

export type FloorRequest =
  | { op: "init"; sessions: number }
  | {
      op: "jobs";
      jobs: JobSpec[];
      /** How many run at once (each on its own chDB session). */
      concurrency: number;
      /** Also time a HeadObject before the CopyObject (what S3ObjectStore.copy does), reported apart. */
      head: boolean;
      /** Delete each result object after it is timed (keeps the disk small for big results). */
      deleteResults: boolean;
      /** The export's S3 upload settings (part sizes, parts in flight): the service's defaults unless given. */
      settings?: ClickHouseSettings;
    }
  | { op: "stop" };

export interface FloorJobTiming {
  /** Export + CopyObject, ms: the floor. */
  ms: number;
  exportMs: number;
  copyMs: number;
  /** HeadObject, ms (0 unless asked for); not part of `ms`. */
  headMs: number;
  size: number;
}

export type FloorResponse =
  | { op: "init"; pid: number; s3Endpoint: string; dir: string; clickhouseVersion: string }
  | {
      op: "jobs";
      timings: FloorJobTiming[];
      wallMs: number;
      /** CPU of this process (all threads) over the jobs, without the deletes of results, ms. */
      cpuMs: number;
    }
  | { op: "stop" }
  | { op: "error"; message: string };

/** The embedded S3 credentials and buckets of a default embedded chjob (what the service uses in the bench). */
export const S3_KEY_ID = "chjob";
export const S3_SECRET = "chjob-local-secret";
export const BUCKET = "dekart-dev-local";
export const PREFIX = "files";
