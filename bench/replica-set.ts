// What the workloads that run several replicas on one PostgreSQL schema share
// (bench/workloads/replicas.ts, recovery.ts): the server, the S3 server in a
// process of its own with the two buckets, each replica's environment, and a
// summary of what the replicas logged.
import { S3_KEY_ID, S3_SECRET } from "./protocol.js";
import { startS3Process, type S3Process } from "./s3-server.js";
import type { BenchService } from "./service.js";

export const OUT_BUCKET = "bench-out";
export const RESULT_BUCKET = "bench-results";
const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";

/** The PostgreSQL server of the bench: BENCH_DATABASE_URL, or the local default. */
export const benchDatabaseUrl = (): string => process.env.BENCH_DATABASE_URL ?? DEFAULT_URL;

/** An S3 server in a process of its own, with the output and result buckets. */
export const startSharedS3 = (): Promise<S3Process> =>
  startS3Process({ buckets: [OUT_BUCKET, RESULT_BUCKET], accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET });

export interface Replica {
  name: string;
  svc: BenchService;
}

/** A replica's environment: the shared schema and S3 server, its own name, `slots` exports; `base` first (the bench's --env). */
export function replicaEnv(
  base: Record<string, string> | undefined,
  opts: { url: string; schema: string; name: string; slots: number; s3Endpoint: string },
): Record<string, string> {
  return {
    ...base,
    CHJOB_DATABASE_URL: opts.url,
    CHJOB_DATABASE_SCHEMA: opts.schema,
    CHJOB_REPLICA_ID: opts.name,
    CHJOB_MAX_CONCURRENT_JOBS: String(opts.slots),
    AWS_ENDPOINT: opts.s3Endpoint,
    DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: `${OUT_BUCKET}/files`,
    DEKART_CLOUD_STORAGE_BUCKET: RESULT_BUCKET,
  };
}

/** Each distinct log message of the replicas (all of them, stopped ones included), with its count; the job ids the lines name. */
export function logSummary(started: Replica[]): { messages: Record<string, number>; jobs: Set<string> } {
  const messages: Record<string, number> = {};
  const jobs = new Set<string>();
  for (const r of started) {
    for (const line of r.svc.logLines) {
      let msg = line;
      try {
        const parsed = JSON.parse(line) as { msg?: string; job?: string };
        msg = parsed.msg ?? line;
        if (parsed.job) jobs.add(parsed.job);
      } catch {
        // not JSON: the line itself
      }
      messages[`${r.name}: ${msg}`] = (messages[`${r.name}: ${msg}`] ?? 0) + 1;
    }
  }
  return { messages, jobs };
}
