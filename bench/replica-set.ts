// Replicas on one PostgreSQL schema, sharing one S3 server, for the workloads
// that run several real `chjob serve` processes (replicas, watchers, recovery): the
// database and its fresh schema, the S3 server in a process of its own, each
// replica's environment, and at the end what the replicas logged and how the
// jobs those lines name stand; then the schema is dropped.
import { JobStatus } from "../gen/chjob/v1/job_service_pb.js";
import { objectExists, s3Client } from "../test/support/s3.js";
import { S3_KEY_ID, S3_SECRET } from "./protocol.js";
import { startS3Process, type S3Process } from "./s3-server.js";
import type { BenchService } from "./service.js";
import { BenchDatabase } from "./store-stats.js";
import { skippedForPostgres, type BenchContext, type WorkloadResult } from "./workload.js";

export const OUT_BUCKET = "bench-out";
export const RESULT_BUCKET = "bench-results";
export const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";
export const REPLICA_NAMES = ["bench-a", "bench-b", "bench-c"] as const;

/** The PostgreSQL server of the bench: BENCH_DATABASE_URL, or the local default. */
export const benchDatabaseUrl = (): string => process.env.BENCH_DATABASE_URL ?? DEFAULT_URL;

/** An S3 server in a process of its own, with the output and result buckets. */
export const startSharedS3 = (): Promise<S3Process> =>
  startS3Process({ buckets: [OUT_BUCKET, RESULT_BUCKET], accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET });

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

export interface Replica {
  name: string;
  svc: BenchService;
}

/** What a workload on replicas gets: the database, its schema, the S3 server, and the replicas to keep track of. */
export interface ReplicaSet {
  db: BenchDatabase;
  schema: string;
  s3: S3Process;
  /** Replicas up now, by slot (undefined: not running); stopped at the end. */
  live: Array<Replica | undefined>;
  /** Every replica started, stopped ones included (their logs are summed up at the end). */
  started: Replica[];
  /** The environment of replica `name` on this schema and S3 server (`slots`: its CHJOB_MAX_CONCURRENT_JOBS). */
  env(name: string, slots: number): Record<string, string>;
}

/**
 * Runs `measure` on a fresh schema of BENCH_DATABASE_URL with an S3 server of its own; then
 * stops the replicas left in `live`, reports their log, drops the schema. With no PostgreSQL
 * the workload is skipped (one row saying so).
 */
export async function onReplicaSet(
  ctx: BenchContext,
  workload: { name: string; title: string },
  measure: (set: ReplicaSet) => Promise<WorkloadResult>,
): Promise<WorkloadResult> {
  const url = benchDatabaseUrl();
  const db = await BenchDatabase.connect(url);
  if (typeof db === "string") {
    ctx.say(`  skipped: no PostgreSQL to run against (${db}); set BENCH_DATABASE_URL`);
    return skippedForPostgres(workload.name, workload.title, db);
  }
  const schema = db.freshSchema();
  ctx.say(`  PostgreSQL: ${db.description}, schema ${schema}`);
  let s3: S3Process | undefined;
  const live: Array<Replica | undefined> = [];
  const started: Replica[] = [];
  let res: WorkloadResult | undefined;
  try {
    s3 = await startSharedS3();
    const s3Endpoint = s3.endpoint;
    const env = (name: string, slots: number) => replicaEnv(ctx.service.env, { url: db.url, schema, name, slots, s3Endpoint });
    res = await measure({ db, schema, s3, live, started, env });
    return res;
  } finally {
    const stops = await Promise.allSettled(live.map((r) => r?.svc.stop()));
    // What the replicas logged at CHJOB_LOG_LEVEL (warn by default: every line is news),
    // and how the jobs those lines name stand now.
    const logged = logSummary(started);
    if (Object.keys(logged.messages).length) ctx.say(`  the replicas logged: ${Object.entries(logged.messages).map(([msg, n]) => `${n} × ${msg}`).join("; ")}`);
    const named = s3 ? await namedJobs(db, schema, s3, [...logged.jobs]).catch((err: Error) => [{ error: err.message }]) : [];
    for (const j of named) ctx.say(`  job named in the log, now: ${JSON.stringify(j)}`);
    if (res) Object.assign(res.details, { replicaLog: logged.messages, jobsNamedInLog: named });
    await s3?.stop();
    await db.dropSchema(schema).catch((err: Error) => ctx.say(`  could not drop schema ${schema}: ${err.message}`));
    await db.close();
    const failed = stops.find((s) => s.status === "rejected");
    // Reported, not thrown: a throw in finally would hide the measurement's own error.
    if (failed) ctx.say(`  a replica did not stop cleanly: ${String((failed as PromiseRejectedResult).reason)}`);
  }
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

/** The jobs as stored, and whether the result object of each that has a result_uri is there. */
async function namedJobs(db: BenchDatabase, schema: string, s3: S3Process, ids: string[]): Promise<Array<Record<string, unknown>>> {
  if (ids.length === 0) return [];
  const client = s3Client(s3.endpoint, S3_KEY_ID, S3_SECRET);
  try {
    const rows = await db.jobRows(schema, ids);
    return await Promise.all(
      rows.map(async (row) => ({
        ...row,
        status: JobStatus[Number(row.status)],
        ...(row.result_uri ? { resultObjectExists: await objectExists(client, String(row.result_uri)) } : {}),
      })),
    );
  } finally {
    client.destroy();
  }
}
