// Metrics and traces with two replicas on one PostgreSQL job store and one S3 server: both report
// the same queue (read from the store), each its own running jobs; each job's end is counted once,
// by the replica that wrote it; a job created on one replica and run on the other has its phase
// spans (from the replica that ran it) under the CreateJob span of the replica that took the call.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus } from "../gen/chjob/v1/job_service_pb.js";
import type { JobClient } from "../src/client.js";
import { startStandaloneS3, type StandaloneS3 } from "./support/fault-s3.js";
import { startOtlpReceiver, type OtlpReceiver } from "./support/otlp-receiver.js";
import { dropSchema, freshSchema, PG_URL } from "./support/postgres.js";
import { metricsUrl, scrape } from "./support/prometheus.js";
import { requirePostgres, whenAvailable } from "./support/requirements.js";
import { startService, type ServiceProcess } from "./support/service.js";
import * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";

interface Ctx {
  otlp: OtlpReceiver;
  s3: StandaloneS3;
  schema: string;
  a: ServiceProcess;
  b: ServiceProcess;
}

const test = whenAvailable(await requirePostgres(), suite<Ctx>("telemetry with two replicas"));

const KEY = "tel-key";
const SECRET = "tel-secret";
const LONG_QUERY = "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)";

function env(ctx: Ctx, name: string): Record<string, string> {
  return {
    CHJOB_DATABASE_URL: PG_URL,
    CHJOB_DATABASE_SCHEMA: ctx.schema,
    CHJOB_REPLICA_ID: name,
    CHJOB_MAX_CONCURRENT_JOBS: "1",
    CHJOB_SHUTDOWN_GRACE: "0s",
    CHJOB_METRICS_ADDRESS: "127.0.0.1:0",
    OTEL_EXPORTER_OTLP_ENDPOINT: ctx.otlp.endpoint,
    OTEL_BSP_SCHEDULE_DELAY: "100",
    AWS_ENDPOINT: ctx.s3.endpoint,
    AWS_ACCESS_KEY_ID: KEY,
    AWS_SECRET_ACCESS_KEY: SECRET,
    DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: "tel-out/files",
    DEKART_CLOUD_STORAGE_BUCKET: "tel-results",
  };
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const runningOn = (client: JobClient, id: string, replica: string) => until(`job ${id} running on ${replica}`, async () => {
  const job = await client.getJob(id);
  return job.status === JobStatus.RUNNING && job.replica === replica && job;
});

test.before(async (ctx) => {
  ctx.otlp = await startOtlpReceiver();
  ctx.s3 = await startStandaloneS3({ buckets: ["tel-out", "tel-results"], accessKeyId: KEY, secretAccessKey: SECRET });
  ctx.schema = freshSchema("chjob_tel");
  // B starts once A is busy, so that the jobs land where the test needs them.
  ctx.a = await startService({ env: env(ctx, "tel-a"), timeoutMs: 90_000 });
});

test.after(async (ctx) => {
  for (const svc of [ctx.a, ctx.b]) {
    await svc?.stop().catch(() => undefined);
    svc?.cleanup();
  }
  await ctx.s3?.cleanup();
  await ctx.otlp?.close();
  if (ctx.schema) await dropSchema(ctx.schema).catch(() => undefined);
});

test("one queue reported alike by both replicas; ends counted once; a job's spans continue the trace of the replica that took the call", async (ctx) => {
  const a = ctx.a.client();
  const long1 = await a.createJob({ reportId: "tel", queryId: "long-1", queryText: LONG_QUERY });
  await runningOn(a, long1.id, "tel-a");
  ctx.b = await startService({ env: env(ctx, "tel-b"), timeoutMs: 90_000 });
  const b = ctx.b.client();
  const [urlA, urlB] = [metricsUrl(ctx.a.logs), metricsUrl(ctx.b.logs)];
  const [beforeA, beforeB] = [await scrape(urlA), await scrape(urlB)];

  // A's one slot is taken: B runs the next long job, created on A.
  const long2 = await a.createJob({ reportId: "tel", queryId: "long-2", queryText: LONG_QUERY });
  await runningOn(a, long2.id, "tel-b");

  // Both slots taken: a job created on A with the caller's trace context waits.
  const traceId = randomBytes(16).toString("hex");
  const callerSpan = randomBytes(8).toString("hex");
  const traced: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set("traceparent", `00-${traceId}-${callerSpan}-01`);
        next(metadata, listener);
      },
    });
  const tracedA = ctx.a.client({ channelOptions: { interceptors: [traced] } as grpc.ChannelOptions });
  const waiting = await tracedA.createJob({ reportId: "tel", queryId: "traced", queryText: "SELECT number FROM numbers(10)" });
  await new Promise((r) => setTimeout(r, 1100));
  const [duringA, duringB] = [await scrape(urlA), await scrape(urlB)];
  for (const [name, s] of [["A", duringA], ["B", duringB]] as const) {
    assert.is(s.value("chjob_queue_depth"), 1, `${name}: the one waiting job`);
    assert.ok(s.value("chjob_oldest_pending_age_seconds") >= 1, `${name}: it has waited ${s.value("chjob_oldest_pending_age_seconds")} s`);
    assert.is(s.value("chjob_running_jobs"), 1, `${name}: its own running job`);
  }

  // Cancel B's job through A: B's slot frees, and B runs the waiting job.
  await a.cancelJob(long2.id);
  const done = await until("the traced job DONE", async () => {
    const j = await b.getJob(waiting.id);
    return j.status === JobStatus.DONE && j;
  });
  assert.is(done.replica, "tel-b", "run by the other replica");
  // And A's job through B.
  await b.cancelJob(long1.id);
  await until("nothing running", async () => (await scrape(urlA)).value("chjob_running_jobs") === 0 && (await scrape(urlB)).value("chjob_running_jobs") === 0);

  const [afterA, afterB] = [await scrape(urlA), await scrape(urlB)];
  const moved = (name: string, labels: Record<string, string>) => ({
    a: afterA.value(name, labels) - beforeA.value(name, labels),
    b: afterB.value(name, labels) - beforeB.value(name, labels),
  });
  // The replica that wrote each end counts it: A cancelled long-2, B cancelled long-1 and finished the traced job.
  assert.equal(moved("chjob_jobs_finished_total", { status: "CANCELLED" }), { a: 1, b: 1 });
  assert.equal(moved("chjob_jobs_finished_total", { status: "DONE" }), { a: 0, b: 1 });
  // Phases by the replica that ran them: long-1 on A, long-2 and the traced job on B.
  assert.equal(moved("chjob_job_duration_seconds_count", { status: "CANCELLED", phase: "export" }), { a: 1, b: 1 });
  assert.equal(moved("chjob_job_duration_seconds_count", { status: "DONE", phase: "copy" }), { a: 0, b: 1 });
  assert.equal(moved("chjob_queue_wait_seconds_count", {}), { a: 0, b: 2 }, "B took long-2 and the traced job from the queue");
  assert.is(afterA.value("chjob_queue_depth"), 0);
  assert.is(afterB.value("chjob_queue_depth"), 0);

  const create = await ctx.otlp.waitFor("CreateJob span", (spans) => spans.find((s) => s.name === "chjob.v1.JobService/CreateJob" && s.traceId === traceId));
  assert.is(create.resource["service.instance.id"], "tel-a");
  assert.is(create.parentSpanId, callerSpan);
  const copy = await ctx.otlp.waitFor("copy span", (spans) => spans.find((s) => s.name === "chjob.job.copy" && s.attributes["chjob.job.id"] === waiting.id));
  const phases = ctx.otlp.spans.filter((s) => s.attributes["chjob.job.id"] === waiting.id && s.name.startsWith("chjob.job."));
  assert.equal(phases.map((s) => s.name).sort(), ["chjob.job.copy", "chjob.job.export", "chjob.job.queue"]);
  for (const s of phases) {
    assert.is(s.traceId, traceId, `${s.name}: the caller's trace`);
    assert.is(s.parentSpanId, create.spanId, `${s.name}: under A's CreateJob span`);
    assert.is(s.resource["service.instance.id"], "tel-b", `${s.name}: from B, which ran it`);
  }
  assert.is(copy.attributes["chjob.job.status"], "DONE");
  const queue = phases.find((s) => s.name === "chjob.job.queue")!;
  assert.ok(queue.endMs - queue.startMs >= 1000, `the queue span covers the wait (${queue.endMs - queue.startMs} ms)`);
});

test.run();
