// Prometheus metrics of the real service (CHJOB_METRICS_ADDRESS=127.0.0.1:0): jobs that end DONE,
// FAILED and CANCELLED (one while running, one while waiting), calls that succeed and fail, and
// a watcher; each figure is read over HTTP before and after, and checked to have moved as it
// should. No label value may be a job id or query text.
import { createServer } from "node:net";
import { status } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import type { JobClient } from "../src/client.js";
import { ConfigurationConflictError } from "../src/errors.js";
import { createLogger } from "../src/log.js";
import { startMetricsServer } from "../src/telemetry/metrics-server.js";
import { metricsUrl, scrape, type Scrape } from "./support/prometheus.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

interface Ctx {
  svc: ServiceProcess;
  client: JobClient;
  url: string;
  before: Scrape;
}

const test = suite<Ctx>("metrics");

const LONG_QUERY = "SELECT sum(cityHash64(number)) AS s FROM numbers(1000000000000)";
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;
const SQL = /\b(SELECT|FROM|numbers|cityHash64|INSERT)\b/i;

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const statusOf = async (client: JobClient, id: string, want: JobStatus) => (await client.getJob(id)).status === want;

async function runToEnd(client: JobClient, req: { reportId: string; queryId: string; queryText: string }): Promise<Job> {
  const job = await client.createJob(req);
  const states = await collect(client.watchJob(job.id).states);
  return states.at(-1)!;
}

test.before(async (ctx) => {
  ctx.svc = await startService({ env: { CHJOB_METRICS_ADDRESS: "127.0.0.1:0", CHJOB_MAX_CONCURRENT_JOBS: "1" }, timeoutMs: 90_000 });
  ctx.client = ctx.svc.client();
  ctx.url = metricsUrl(ctx.svc.logs);
  ctx.before = await scrape(ctx.url);
});

test.after(async (ctx) => {
  await ctx.svc?.stop();
  ctx.svc?.cleanup();
});

test("the serving line names the bound metrics address; /metrics is Prometheus text with Node's process metrics; other paths 404", async ({ url, before }) => {
  assert.match(url, /^http:\/\/127\.0\.0\.1:[1-9]\d*\/metrics$/);
  assert.is(before.status, 200);
  assert.match(before.contentType, /^text\/plain; version=0\.0\.4/);
  for (const name of ["process_cpu_user_seconds_total", "process_resident_memory_bytes", "nodejs_heap_size_used_bytes", "nodejs_eventloop_lag_seconds"]) {
    assert.ok(before.has(name), `${name} is there`);
  }
  for (const name of ["chjob_queue_depth", "chjob_running_jobs", "chjob_oldest_pending_age_seconds", "chjob_watchers"]) assert.ok(before.has(name), name);
  assert.is(before.value("chjob_queue_depth"), 0);
  assert.is(before.value("chjob_running_jobs"), 0);
  assert.is(before.value("chjob_jobs_finished_total", { status: "DONE" }), 0, "each status is there from the start, at 0");
  assert.is((await fetch(url.replace(/\/metrics$/, "/"))).status, 404);
});

test("a waiting job: queue depth and oldest pending age from the store; running jobs and watchers of this replica", async (ctx) => {
  const { client, url } = ctx;
  const long = await client.createJob({ reportId: "metrics", queryId: "long", queryText: LONG_QUERY });
  await until("the long job to run", () => statusOf(client, long.id, JobStatus.RUNNING));
  // One export slot: this one waits.
  const waiting = await client.createJob({ reportId: "metrics", queryId: "waiting", queryText: "SELECT 1" });
  const watch = client.watchJob(long.id);
  const seen = collect(watch.states);
  await new Promise((r) => setTimeout(r, 1200));
  const during = await until("a watcher", async () => {
    const s = await scrape(url);
    return s.value("chjob_watchers") === 1 && s;
  });
  assert.is(during.value("chjob_queue_depth"), 1);
  assert.ok(during.value("chjob_oldest_pending_age_seconds") >= 1, `oldest pending age ${during.value("chjob_oldest_pending_age_seconds")}`);
  assert.ok(during.value("chjob_oldest_pending_age_seconds") < 60);
  assert.is(during.value("chjob_running_jobs"), 1);

  // Cancelled while waiting (never ran), then the running one.
  assert.is((await client.cancelJob(waiting.id)).status, JobStatus.CANCELLED);
  assert.is((await client.cancelJob(long.id)).status, JobStatus.CANCELLED);
  assert.is((await seen).at(-1)!.status, JobStatus.CANCELLED);
});

test("a DONE and a FAILED job, and calls that fail", async ({ client }) => {
  const done = await runToEnd(client, { reportId: "metrics", queryId: "done", queryText: "SELECT number, toString(number) AS s FROM numbers(1000)" });
  assert.is(done.status, JobStatus.DONE, done.error);
  const failed = await runToEnd(client, { reportId: "metrics", queryId: "failed", queryText: "SELECT no_such_column FROM numbers(3)" });
  assert.is(failed.status, JobStatus.FAILED);
  const invalid = await client.createJob({ reportId: "", queryId: "q", queryText: "SELECT 1" }).catch((e) => e);
  assert.is(invalid.code, status.INVALID_ARGUMENT);
  const missing = await client.getJob("00000000-0000-4000-8000-000000000000").catch((e) => e);
  assert.is(missing.code, status.NOT_FOUND);
});

test("the figures moved as they should", async ({ client, url, before }) => {
  // The runner observes a run's phases as it lets the job go: wait until nothing runs here.
  await until("no running job", async () => (await scrape(url)).value("chjob_running_jobs") === 0);
  const after = await scrape(url);
  const moved = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);

  // Jobs by final status: one DONE, one FAILED, two CANCELLED.
  assert.is(moved("chjob_jobs_finished_total", { status: "DONE" }), 1);
  assert.is(moved("chjob_jobs_finished_total", { status: "FAILED" }), 1);
  assert.is(moved("chjob_jobs_finished_total", { status: "CANCELLED" }), 2);
  assert.is(after.value("chjob_queue_depth"), 0);
  assert.is(after.value("chjob_oldest_pending_age_seconds"), 0);
  assert.is(after.value("chjob_watchers"), 0, "the watch stream ended");

  // Three jobs were claimed from the queue; the fourth was cancelled while it waited.
  assert.is(moved("chjob_queue_wait_seconds_count"), 3);
  const phases = (status: string, phase: string) => moved("chjob_job_duration_seconds_count", { status, phase });
  assert.equal(
    { done: [phases("DONE", "queue"), phases("DONE", "export"), phases("DONE", "copy")], failed: [phases("FAILED", "queue"), phases("FAILED", "export"), phases("FAILED", "copy")], cancelled: [phases("CANCELLED", "queue"), phases("CANCELLED", "export"), phases("CANCELLED", "copy")] },
    { done: [1, 1, 1], failed: [1, 1, 0], cancelled: [2, 1, 0] },
  );
  assert.ok(moved("chjob_job_duration_seconds_sum", { status: "CANCELLED", phase: "export" }) >= 1, "the cancelled export ran for a while");
  const done = (await client.listJobs({ reportId: "metrics" })).jobs.find((j) => j.queryId === "done")!;
  assert.is(moved("chjob_result_bytes_count"), 1);
  assert.is(moved("chjob_result_bytes_sum"), Number(done.resultSize));

  // Per RPC, by code, as grpc-prometheus labels them.
  const rpc = { grpc_service: "chjob.v1.JobService", grpc_type: "unary" };
  assert.is(moved("grpc_server_started_total", { ...rpc, grpc_method: "CreateJob" }), 5);
  assert.is(moved("grpc_server_handled_total", { ...rpc, grpc_method: "CreateJob", grpc_code: "OK" }), 4);
  assert.is(moved("grpc_server_handled_total", { ...rpc, grpc_method: "CreateJob", grpc_code: "InvalidArgument" }), 1);
  assert.is(moved("grpc_server_handling_seconds_count", { ...rpc, grpc_method: "CreateJob" }), 5);
  assert.is(moved("grpc_server_handled_total", { ...rpc, grpc_method: "CancelJob", grpc_code: "OK" }), 2);
  assert.is(moved("grpc_server_handled_total", { ...rpc, grpc_method: "GetJob", grpc_code: "NotFound" }), 1);
  assert.ok(moved("grpc_server_handled_total", { ...rpc, grpc_method: "GetJob", grpc_code: "OK" }) >= 1);
  const watch = { grpc_service: "chjob.v1.JobService", grpc_method: "WatchJob", grpc_type: "server_stream" };
  assert.is(moved("grpc_server_started_total", watch), 3);
  assert.is(moved("grpc_server_handled_total", { ...watch, grpc_code: "OK" }), 3);
  assert.ok(moved("grpc_server_msg_sent_total", watch) >= 6, "each watch sent states");

  // Nothing that names a job or a query in any label.
  const values = new Set(after.samples.flatMap((s) => Object.values(s.labels)));
  for (const v of values) {
    assert.not.ok(UUID.test(v), `a label value looks like a job id: ${v}`);
    assert.not.ok(SQL.test(v), `a label value looks like SQL: ${v}`);
  }
  assert.not.ok(UUID.test(after.text), "no job id anywhere in the text");
  const names = new Set(after.samples.flatMap((s) => Object.keys(s.labels)));
  assert.equal([...names].filter((n) => !["status", "phase", "grpc_type", "grpc_service", "grpc_method", "grpc_code", "le", "quantile"].includes(n) && !/^(version|major|minor|patch|space|kind|type)$/.test(n)), []);
});

test.run();

const listener = suite("metrics listener");

listener("a port in use is a configuration conflict naming CHJOB_METRICS_ADDRESS (chjob serve exits 2)", async () => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", () => resolve()));
  const port = (holder.address() as { port: number }).port;
  try {
    const log = createLogger("error", (s) => s);
    const err = await startMetricsServer(`127.0.0.1:${port}`, async () => ({ text: "", contentType: "text/plain" }), log).catch((e) => e);
    assert.instance(err, ConfigurationConflictError);
    assert.is(err.message, `CHJOB_METRICS_ADDRESS: cannot listen on 127.0.0.1:${port}: the port is in use; set CHJOB_METRICS_ADDRESS to a free address (port 0 picks one)`);
    // Port 0 picks one; a failing scrape is a 500, not a crash.
    const server = await startMetricsServer("127.0.0.1:0", async () => Promise.reject(new Error("nope")), log);
    try {
      assert.match(server.address, /^127\.0\.0\.1:[1-9]\d*$/);
      assert.is((await fetch(`http://${server.address}/metrics`)).status, 500);
      assert.is((await fetch(`http://${server.address}/metrics`, { method: "POST" })).status, 405);
    } finally {
      await server.close();
    }
  } finally {
    holder.close();
  }
});

listener.run();
