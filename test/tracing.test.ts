// OpenTelemetry traces of the real service, received over OTLP/HTTP by a stand-in collector on a
// loopback port (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_BSP_SCHEDULE_DELAY small): the RPC span
// continues the traceparent the client sent; the job's queue, export and copy spans are children
// of the CreateJob span; failures and refusals are marked as OpenTelemetry says. Then the export's
// trace context on the HTTP request to ClickHouse: against a stand-in server through the engine,
// and through the whole service to a real ClickHouse server (skipped without one).
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import { openEngine } from "../src/clickhouse/open.js";
import type { JobClient } from "../src/client.js";
import { tracingDecision } from "../src/telemetry/otel-env.js";
import { startClickHouseServer } from "./support/clickhouse-server.js";
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from "./support/otlp-receiver.js";
import { startRecordingProxy } from "./support/recording-proxy.js";
import { CLICKHOUSE_SERVER, requireProgram, whenAvailable } from "./support/requirements.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

interface Ctx {
  otlp: OtlpReceiver;
  svc: ServiceProcess;
  replica: string;
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** A caller's trace context: what the client sends as `traceparent`. */
function callerContext() {
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

/** A JobClient whose every call carries `traceparent` metadata (a grpc-js client interceptor). */
function tracedClient(svc: ServiceProcess, traceparent: string): JobClient {
  const addTraceparent: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set("traceparent", traceparent);
        next(metadata, listener);
      },
    });
  return svc.client({ channelOptions: { interceptors: [addTraceparent] } as grpc.ChannelOptions });
}

async function runToEnd(client: JobClient, req: { reportId: string; queryId: string; queryText: string }): Promise<Job> {
  const job = await client.createJob(req);
  return (await collect(client.watchJob(job.id).states)).at(-1)!;
}

const byName = (spans: ReceivedSpan[], name: string, jobId?: string) => spans.filter((s) => s.name === name && (jobId === undefined || s.attributes["chjob.job.id"] === jobId));

const test = suite<Ctx>("traces");

test.before(async (ctx) => {
  ctx.otlp = await startOtlpReceiver();
  ctx.svc = await startService({
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: ctx.otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY: "100", CHJOB_MAX_CONCURRENT_JOBS: "1" },
    timeoutMs: 90_000,
  });
  const serving = JSON.parse(ctx.svc.logs.find((l) => l.includes('"msg":"chjob serving"'))!) as { replica: string; traces: string };
  assert.is(serving.traces, `OTLP/HTTP JSON to ${ctx.otlp.endpoint}/v1/traces`);
  ctx.replica = serving.replica;
});

test.after(async (ctx) => {
  await ctx.svc?.stop();
  ctx.svc?.cleanup();
  await ctx.otlp?.close();
});

test("tracing is off unless an OTLP endpoint is given; OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none turn it off", () => {
  assert.equal(tracingDecision({}), { on: false, why: "no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" });
  assert.equal(tracingDecision({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318/" }), { on: true, endpoint: "http://c:4318/v1/traces" });
  assert.equal(tracingDecision({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://t:4318/x" }), { on: true, endpoint: "http://t:4318/x" });
  assert.is(tracingDecision({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }).on, false);
  assert.is(tracingDecision({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "none" }).on, false);
  assert.is(tracingDecision({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_TRACES_EXPORTER: "otlp" }).on, true);
});

test("CreateJob's span continues the caller's traceparent; the job's queue, export and copy spans are its children, in order", async ({ otlp, svc, replica }) => {
  const caller = callerContext();
  const client = tracedClient(svc, caller.traceparent);
  const job = await runToEnd(client, { reportId: "traces", queryId: "done", queryText: "SELECT number FROM numbers(100)" });
  assert.is(job.status, JobStatus.DONE, job.error);

  const create = await otlp.waitFor("CreateJob span", (spans) => byName(spans, "chjob.v1.JobService/CreateJob", job.id)[0]);
  assert.is(create.traceId, caller.traceId, "the caller's trace");
  assert.is(create.parentSpanId, caller.spanId, "the caller's span is its parent");
  assert.is(create.kind, 2, "SERVER");
  assert.is(create.attributes["rpc.system.name"], "grpc");
  assert.is(create.attributes["rpc.method"], "chjob.v1.JobService/CreateJob");
  assert.is(create.attributes["rpc.status_code"], "OK");
  assert.is(create.status.code, 0);
  assert.is(create.resource["service.name"], "chjob", "OTEL_SERVICE_NAME's default");
  assert.is(create.resource["service.instance.id"], replica);

  const copy = await otlp.waitFor("copy span", (spans) => byName(spans, "chjob.job.copy", job.id)[0]);
  const [queue] = byName(otlp.spans, "chjob.job.queue", job.id);
  const [exported] = byName(otlp.spans, "chjob.job.export", job.id);
  assert.ok(queue && exported, `queue and export spans: ${otlp.spans.map((s) => s.name).join(", ")}`);
  for (const phase of [queue!, exported!, copy]) {
    assert.is(phase.traceId, caller.traceId, `${phase.name} in the caller's trace`);
    assert.is(phase.parentSpanId, create.spanId, `${phase.name} is a child of the CreateJob span`);
    assert.is(phase.attributes["chjob.job.attempt"], 1);
    assert.is(phase.attributes["chjob.replica"], replica);
    assert.ok(phase.endMs >= phase.startMs, phase.name);
  }
  assert.is(exported!.kind, 3, "the export is a CLIENT span (ClickHouse's spans go under it)");
  assert.is(copy.attributes["chjob.job.status"], "DONE");
  assert.is(copy.status.code, 0);
  // The queue runs by the store's clock, the rest by this process's: the same machine here.
  assert.ok(Math.abs(queue!.startMs - create.startMs) < 1000, "the queue starts with CreateJob");
  assert.ok(queue!.endMs <= exported!.startMs + 50, "queue, then export");
  assert.ok(exported!.endMs <= copy.startMs + 5, "export, then copy");

  // The watch is traced in the caller's trace too.
  const watch = await otlp.waitFor("WatchJob span", (spans) => spans.find((s) => s.name === "chjob.v1.JobService/WatchJob" && s.traceId === caller.traceId));
  assert.is(watch.parentSpanId, caller.spanId);
  assert.is(watch.attributes["rpc.status_code"], "OK");
  assert.ok(otlp.requests.every((r) => r.path === "/v1/traces" && r.contentType === "application/json"), JSON.stringify(otlp.requests.slice(0, 3)));
});

test("a FAILED job: its export span carries the error; no copy span", async ({ otlp, svc }) => {
  const caller = callerContext();
  const job = await runToEnd(tracedClient(svc, caller.traceparent), { reportId: "traces", queryId: "failed", queryText: "SELECT no_such_column FROM numbers(3)" });
  assert.is(job.status, JobStatus.FAILED);
  const exported = await otlp.waitFor("export span", (spans) => byName(spans, "chjob.job.export", job.id)[0]);
  assert.is(exported.traceId, caller.traceId);
  assert.is(exported.status.code, 2, "ERROR");
  assert.is(exported.status.message, job.error);
  assert.is(exported.attributes["chjob.job.status"], "FAILED");
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(byName(otlp.spans, "chjob.job.copy", job.id), []);
});

test("a job cancelled while it waits: a queue span alone, ended CANCELLED; a cancelled export: its span ends CANCELLED, no error", async ({ otlp, svc }) => {
  const caller = callerContext();
  const client = tracedClient(svc, caller.traceparent);
  // The one export slot (CHJOB_MAX_CONCURRENT_JOBS=1) is taken: the next job waits.
  const long = await client.createJob({ reportId: "traces", queryId: "long", queryText: "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)" });
  for (let i = 0; i < 300 && (await client.getJob(long.id)).status !== JobStatus.RUNNING; i++) await new Promise((r) => setTimeout(r, 100));
  const waiting = await client.createJob({ reportId: "traces", queryId: "waiting", queryText: "SELECT 1" });
  const cancelled = await client.cancelJob(waiting.id);
  assert.is(cancelled.status, JobStatus.CANCELLED);
  assert.is(cancelled.attempt, 0, "never claimed");
  const queue = await otlp.waitFor("queue span of the waiting job", (spans) => byName(spans, "chjob.job.queue", waiting.id)[0]);
  const create = byName(otlp.spans, "chjob.v1.JobService/CreateJob", waiting.id)[0];
  assert.ok(create, "its CreateJob span");
  assert.is(queue.traceId, caller.traceId);
  assert.is(queue.parentSpanId, create!.spanId);
  assert.is(queue.attributes["chjob.job.status"], "CANCELLED", "its whole life was the queue");
  assert.is(queue.attributes["chjob.job.attempt"], 0);

  await client.cancelJob(long.id);
  const exported = await otlp.waitFor("export span of the cancelled job", (spans) => byName(spans, "chjob.job.export", long.id)[0]);
  assert.is(exported.attributes["chjob.job.status"], "CANCELLED");
  assert.is(exported.status.code, 0, "a cancel is no error");
  assert.ok(exported.endMs - exported.startMs >= 100, "it ran until cancelled");
});

test("a refused call: its span says INVALID_ARGUMENT, not a server error; without a traceparent a call starts its own trace; health probes are not traced alone", async ({ otlp, svc }) => {
  const caller = callerContext();
  const err = await tracedClient(svc, caller.traceparent).createJob({ reportId: "", queryId: "q", queryText: "SELECT 1" }).catch((e) => e);
  assert.is(err.code, grpc.status.INVALID_ARGUMENT);
  const refused = await otlp.waitFor("the refused CreateJob", (spans) => spans.find((s) => s.traceId === caller.traceId && s.name === "chjob.v1.JobService/CreateJob"));
  assert.is(refused.attributes["rpc.status_code"], "INVALID_ARGUMENT");
  assert.is(refused.status.code, 0, "a caller's mistake is no error of the server's");

  const plain = svc.client();
  await plain.healthCheck();
  const missing = await plain.getJob("00000000-0000-4000-8000-00000000abcd").catch((e) => e);
  assert.is(missing.code, grpc.status.NOT_FOUND);
  const get = await otlp.waitFor("the untraced GetJob", (spans) => spans.find((s) => s.name === "chjob.v1.JobService/GetJob" && s.attributes["rpc.status_code"] === "NOT_FOUND"));
  assert.is(get.parentSpanId, "", "a root span");
  assert.match(get.traceId, /^[0-9a-f]{32}$/);
  assert.not.ok(otlp.spans.some((s) => s.name.startsWith("grpc.health.v1.Health/")), "no span for a probe without a trace");
});

test("the engine sends the export's trace context to ClickHouse as a traceparent HTTP header", async () => {
  const seen: IncomingHttpHeaders[] = [];
  const fake = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      seen.push(req.headers);
      res.writeHead(200, { "X-ClickHouse-Summary": JSON.stringify({ written_rows: "1", read_bytes: "8" }) }).end();
    });
  });
  await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", () => resolve()));
  const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
  const engine = await openEngine(
    { kind: "http", url, username: "u", password: "p", database: "db", connectTimeoutMs: 2000, skipVerify: false, mappedFrom: undefined },
    { maxConcurrent: 1, jobTimeoutMs: 10_000 },
  );
  try {
    const traceparent = `00-${hex(16)}-${hex(8)}-01`;
    const ref = { jobId: "5b0f3a1e-2c1d-4e5f-8a9b-0c1d2e3f4a5b", url: "unused" };
    const ended = await engine.runExport(ref, "INSERT INTO FUNCTION s3('x') SELECT 1", {}, { traceparent });
    assert.equal(await ended.figures, { writtenRows: 1, readBytes: 8 });
    assert.is(seen.at(-1)!.traceparent, traceparent);
    await engine.runExport(ref, "INSERT INTO FUNCTION s3('x') SELECT 1", {});
    assert.is(seen.at(-1)!.traceparent, undefined, "none when tracing is off");
  } finally {
    await engine.close();
    fake.close();
  }
});

test.run();

// ---------------------------------------------------------------------------------------------
// Through the whole service to a real ClickHouse server (Debian's 18.16: it predates ClickHouse's
// OpenTelemetry support, and has no s3() so the export fails; the request is what is checked).

const server = whenAvailable(requireProgram(CLICKHOUSE_SERVER), suite("traces to a ClickHouse server"));

server("the export request carries the export span's traceparent", async () => {
  const otlp = await startOtlpReceiver();
  const ch = await startClickHouseServer();
  const proxy = await startRecordingProxy(ch.httpUrl);
  const dsn = ch.dsn.replace(ch.httpUrl.replace("http://", ""), proxy.endpoint.replace("http://", "")).replace("http://", "clickhouse://");
  const svc = await startService({ env: { DEKART_CLICKHOUSE_DATA_CONNECTION: dsn, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, OTEL_BSP_SCHEDULE_DELAY: "100" }, timeoutMs: 90_000 });
  try {
    const caller = callerContext();
    const job = await runToEnd(tracedClient(svc, caller.traceparent), { reportId: "traces", queryId: "server", queryText: "SELECT 1" });
    assert.is(job.status, JobStatus.FAILED, "18.16 has no s3()");
    const exported = await otlp.waitFor("export span", (spans) => byName(spans, "chjob.job.export", job.id)[0]);
    const request = proxy.requests.find((r) => r.query.get("query_id") === job.id);
    assert.ok(request, `the export request (query_id ${job.id}) went through the proxy`);
    assert.is(request!.headers.traceparent, `00-${caller.traceId}-${exported.spanId}-01`, "ClickHouse is told the export span");
  } finally {
    await svc.stop();
    svc.cleanup();
    await proxy.close();
    await ch.stop();
    await otlp.close();
  }
});

server.run();
