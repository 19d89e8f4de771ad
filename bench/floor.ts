// The floor: the same work a chjob job does, with no service. One process (chDB
// binds one data path per process) that starts an embedded S3 server like the
// service's, opens chDB sessions, and on request runs jobs as
//   INSERT INTO FUNCTION s3(...) <query>   (s3_truncate_on_insert=1 and the
//   S3 upload settings the service sends: src/storage/parts.ts)
//   CopyObject export -> <uuid>.csv
// timing each one. Started by bench/floor-process.ts with UV_THREADPOOL_SIZE
// already in its environment (chDB's queryAsync holds a pool thread per query).
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { ClickHouseClient, ClickHouseSettings } from "@clickhouse/client";
import { chdbClient } from "../src/clickhouse/chdb.js";
import { exportKey, exportSql } from "../src/clickhouse/export-sql.js";
import { startEmbeddedS3, type EmbeddedS3 } from "../src/storage/embedded-s3.js";
import { DEFAULT_EMBEDDED_INFLIGHT_PARTS, exportUploadSettings } from "../src/storage/parts.js";
import { withBucketPathsWithoutSlash } from "../src/storage/s3.js";
import { BUCKET, PREFIX, S3_KEY_ID, S3_SECRET, type FloorJobTiming, type FloorRequest, type FloorResponse, type JobSpec } from "./protocol.js";

interface State {
  dir: string;
  s3: EmbeddedS3;
  client: S3Client;
  sessions: ClickHouseClient[];
}

let state: State | undefined;

const send = (res: FloorResponse) => process.send!(res);

process.on("message", (req: FloorRequest) => {
  handle(req).then(send, (err: unknown) => send({ op: "error", message: String((err as Error)?.stack ?? err) }));
});
process.on("disconnect", () => process.exit(0));

async function handle(req: FloorRequest): Promise<FloorResponse> {
  switch (req.op) {
    case "init":
      return init(req.sessions);
    case "jobs": {
      const s = state!;
      const timings: Timed[] = new Array(req.jobs.length);
      let next = 0;
      let deleteCpuMs = 0;
      const cpu0 = process.cpuUsage();
      const started = performance.now();
      const worker = async (session: ClickHouseClient) => {
        while (next < req.jobs.length) {
          const i = next++;
          timings[i] = await runJob(s, session, req.jobs[i]!, req.head, req.settings ?? SERVICE_EXPORT_SETTINGS);
          if (req.deleteResults) {
            const d0 = process.cpuUsage();
            await s.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: timings[i]!.resultKey }));
            deleteCpuMs += cpuMs(process.cpuUsage(d0));
          }
        }
      };
      await Promise.all(s.sessions.slice(0, req.concurrency).map(worker));
      const wallMs = performance.now() - started;
      const total = cpuMs(process.cpuUsage(cpu0));
      return { op: "jobs", timings: timings.map(({ resultKey: _, ...t }) => t), wallMs, cpuMs: total - deleteCpuMs };
    }
    case "stop":
      if (state) {
        await Promise.allSettled(state.sessions.map((c) => c.close()));
        state.client.destroy();
        await state.s3.close();
        rmSync(state.dir, { recursive: true, force: true });
        state = undefined;
      }
      setImmediate(() => process.exit(0));
      return { op: "stop" };
  }
}

async function init(sessions: number): Promise<FloorResponse> {
  const dir = mkdtempSync(join(tmpdir(), "chjob-bench-floor-"));
  const s3 = await startEmbeddedS3({
    host: "127.0.0.1",
    port: 0,
    directory: join(dir, "s3"),
    buckets: [BUCKET],
    accessKeyId: S3_KEY_ID,
    secretAccessKey: S3_SECRET,
  });
  // Configured as S3ObjectStore configures its client.
  const client = withBucketPathsWithoutSlash(
    new S3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET },
      requestHandler: { connectionTimeout: 10_000 },
    }),
  );
  const chdbPath = join(dir, "clickhouse");
  const all = await Promise.all(Array.from({ length: sessions }, () => chdbClient(chdbPath)));
  // Warm the engine (loads once per process), as the service does at start.
  for (const c of all) await (await c.query({ query: "SELECT 1", format: "JSONEachRow" })).json();
  const [v] = await (await all[0]!.query({ query: "SELECT version() AS v", format: "JSONEachRow" })).json<{ v: string }>();
  state = { dir, s3, client, sessions: all };
  return { op: "init", pid: process.pid, s3Endpoint: s3.endpoint, dir, clickhouseVersion: v?.v ?? "?" };
}

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

interface Timed extends FloorJobTiming {
  resultKey: string;
}

/** The upload settings the service's export carries (src/jobs/runner.ts), as an embedded service sends them by default. */
const SERVICE_EXPORT_SETTINGS = exportUploadSettings(DEFAULT_EMBEDDED_INFLIGHT_PARTS);

async function runJob(s: State, session: ClickHouseClient, job: JobSpec, head: boolean, settings: ClickHouseSettings): Promise<Timed> {
  const key = exportKey(PREFIX, job.reportId, job.queryId);
  const sql = exportSql({ endpoint: s.s3.endpoint, bucket: BUCKET, key, accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET }, job.sql);
  const resultKey = `${randomUUID()}.csv`;
  const t0 = performance.now();
  // The settings the service's export carries (src/jobs/runner.ts), all of them on every export:
  // chDB applies them with SET on its session, so one export's would stay for the next.
  await session.command({ query: sql, clickhouse_settings: { s3_truncate_on_insert: 1, max_execution_time: 600, ...settings } });
  const t1 = performance.now();
  let headMs = 0;
  let size = 0;
  if (head) {
    const h = await s.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    size = h.ContentLength ?? 0;
    headMs = performance.now() - t1;
  }
  const t2 = performance.now();
  await s.client.send(new CopyObjectCommand({ Bucket: BUCKET, Key: resultKey, CopySource: `${BUCKET}/${key}` }));
  const t3 = performance.now();
  const exportMs = t1 - t0;
  const copyMs = t3 - t2;
  return { ms: exportMs + copyMs, exportMs, copyMs, headMs, size, resultKey };
}
