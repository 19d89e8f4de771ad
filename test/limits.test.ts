// Limits (docs/api.md, "Limits" and "Shutdown"): job timeout, export slots and the queue, retention,
// and the drain at shutdown.
import { status } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus } from "../gen/chjob/v1/job_service_pb.js";
import { HealthCheckResponse_ServingStatus as Serving } from "../gen/grpc/health/v1/health_pb.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

const LONG_QUERY = "SELECT sum(cityHash64(number)) AS s FROM numbers(1000000000000)";

const test = suite<{ svc: ServiceProcess }>("limits");

test.before(async (ctx) => {
  ctx.svc = await startService({
    env: { CHJOB_JOB_TIMEOUT: "2s", CHJOB_MAX_CONCURRENT_JOBS: "1", CHJOB_MAX_QUEUED_JOBS: "1", CHJOB_JOB_RETENTION: "2s" },
  });
});

test.after(async (ctx) => {
  assert.is(await ctx.svc.stop(), 0);
  ctx.svc.cleanup();
});

test("a job past CHJOB_JOB_TIMEOUT ends FAILED and its query is stopped", async ({ svc }) => {
  const client = svc.client();
  const started = Date.now();
  const job = await client.createJob({ reportId: "timeout", queryId: "q", queryText: LONG_QUERY });
  const end = (await collect(client.watchJob(job.id).states)).at(-1)!;
  assert.is(end.status, JobStatus.FAILED);
  assert.match(end.error, /CHJOB_JOB_TIMEOUT \(2s\)/);
  assert.ok(Date.now() - started < 6000, `failed after ${Date.now() - started} ms`);
  // The one slot is free again: the server-side query has stopped.
  const next = await client.createJob({ reportId: "timeout", queryId: "next", queryText: "SELECT 1" });
  assert.is((await collect(client.watchJob(next.id).states)).at(-1)!.status, JobStatus.DONE);
});

test("beyond the slots jobs wait PENDING; beyond the queue CreateJob is RESOURCE_EXHAUSTED", async ({ svc }) => {
  const client = svc.client();
  const running = await client.createJob({ reportId: "queue", queryId: "a", queryText: LONG_QUERY });
  const waiting = await client.createJob({ reportId: "queue", queryId: "b", queryText: "SELECT 2" });
  assert.is((await client.getJob(waiting.id)).status, JobStatus.PENDING);
  const refused = await client.createJob({ reportId: "queue", queryId: "c", queryText: "SELECT 3" }).catch((e) => e);
  assert.is(refused.code, status.RESOURCE_EXHAUSTED);
  assert.match(refused.details, /queue is full.*CHJOB_MAX_QUEUED_JOBS=1/);
  const watched = collect(client.watchJob(waiting.id).states);
  await client.cancelJob(running.id);
  const seen = await watched;
  assert.equal(
    seen.map((s) => s.status).filter((s, i, a) => i === 0 || a[i - 1] !== s),
    [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.DONE],
  );
});

test("a query larger than ClickHouse's default max_query_size (256 KiB) but within CHJOB_MAX_QUERY_BYTES runs", async ({ svc }) => {
  const client = svc.client();
  const text = `SELECT length('${"x".repeat(300 * 1024)}') AS n`;
  const job = await client.createJob({ reportId: "bigquery", queryId: "q", queryText: text });
  const end = (await collect(client.watchJob(job.id).states)).at(-1)!;
  assert.is(end.status, JobStatus.DONE, end.error);
});

test("finished jobs are dropped after CHJOB_JOB_RETENTION", async ({ svc }) => {
  const client = svc.client();
  const job = await client.createJob({ reportId: "retention", queryId: "q", queryText: "SELECT 1" });
  await collect(client.watchJob(job.id).states);
  assert.is((await client.getJob(job.id)).status, JobStatus.DONE);
  await new Promise((r) => setTimeout(r, 3000));
  const gone = await client.getJob(job.id).catch((e) => e);
  assert.is(gone.code, status.NOT_FOUND);
  assert.not.ok((await client.listJobs({ reportId: "retention" })).jobs.some((j) => j.id === job.id));
});

test("shutdown: new jobs UNAVAILABLE, health NOT_SERVING, running jobs cancelled after the grace, watchers get it, exit 0", async () => {
  const svc = await startService({ env: { CHJOB_SHUTDOWN_GRACE: "1500ms" } });
  try {
    const client = svc.client();
    const job = await client.createJob({ reportId: "drain", queryId: "q", queryText: LONG_QUERY });
    const watched = collect(client.watchJob(job.id).states);
    await new Promise((r) => setTimeout(r, 300));
    svc.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 300));
    assert.is(await client.healthCheck(""), Serving.NOT_SERVING);
    const refused = await client.createJob({ reportId: "drain", queryId: "late", queryText: "SELECT 1" }).catch((e) => e);
    assert.is(refused.code, status.UNAVAILABLE);
    const end = (await watched).at(-1)!;
    assert.is(end.status, JobStatus.CANCELLED);
    assert.match(end.error, /shut down/);
    assert.is(await svc.exited, 0);
  } finally {
    await svc.stop();
    svc.cleanup();
  }
});

test.run();
