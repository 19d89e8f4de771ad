// The request path in-process: typed handlers through bridge.ts and the interceptor chain
// of interceptors.ts on a real grpc-js server, with a scripted JobService. Slow watchers,
// watchers that leave, thrown errors, the token check, the call log, extra interceptors.
import { Writable } from "node:stream";
import { create } from "@bufbuild/protobuf";
import { ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";
import { of, Subject } from "rxjs";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, WatchJobResponseSchema, type JobService } from "../gen/chjob/v1/job_service_pb.js";
import { HealthCheckResponse_ServingStatus as Serving } from "../gen/grpc/health/v1/health_pb.js";
import { JobClient } from "../src/client.js";
import { InvalidArgumentError } from "../src/errors.js";
import type { ServiceImpl } from "../src/grpc/bridge.js";
import { toProtoJob } from "../src/grpc/convert.js";
import { HealthState } from "../src/grpc/health.js";
import { receiveLimit, startGrpcServer, type RunningGrpcServer } from "../src/grpc/server.js";
import { jobStates } from "../src/grpc/watch.js";
import { NO_PROGRESS, type JobSnapshot } from "../src/jobs/job.js";
import { DEFAULT_KIND } from "../src/jobs/result-format.js";
import { createLogger } from "../src/log.js";

const TOKEN = "grpc-path-token-0123456789";
const JOB_ID = "00000000-0000-4000-8000-000000000001";
const BIG_TEXT = `SELECT '${"x".repeat(16 * 1024)}'`;

let version = 0;
function snapshot(status: JobStatus, rowsRead = 0): JobSnapshot {
  return {
    id: JOB_ID, reportId: "r", queryId: "q", queryText: BIG_TEXT, status, error: "", resultUri: "", resultSize: 0, exportUri: "",
    totalRows: undefined, bytesProcessed: undefined, progress: { ...NO_PROGRESS, rowsRead }, createdAt: 0, updatedAt: 0,
    version: ++version, attempt: 1, replica: "test", requestId: "", ...DEFAULT_KIND, contentType: "text/csv",
    limits: { timeoutMs: 1000 }, reuseMaxAgeMs: undefined, reusedFrom: "", traceParent: "",
  };
}

interface Ctx {
  server: RunningGrpcServer;
  lines: Array<Record<string, unknown>>;
  states: Subject<JobSnapshot>;
  seen: string[];
  /** The signal of each WatchJob call, in order. */
  signals: AbortSignal[];
}
const test = suite<Ctx>("grpc-path");

const never = (): never => {
  throw new Error("not scripted");
};

test.before(async (ctx) => {
  ctx.lines = [];
  ctx.seen = [];
  ctx.signals = [];
  ctx.states = new Subject<JobSnapshot>();
  const out = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split("\n")) if (l) ctx.lines.push(JSON.parse(l));
      done();
    },
  });
  const log = createLogger("debug", (s) => s, out);
  const jobs: ServiceImpl<typeof JobService> = {
    createJob: async (req) => {
      if (req.reportId === "throw") throw new Error("a bug with a secret inside");
      throw new InvalidArgumentError("query_text", `is ${Buffer.byteLength(req.queryText)} bytes`);
    },
    getJob: never,
    cancelJob: never,
    listJobs: never,
    async *watchJob(_req, { signal }) {
      ctx.signals.push(signal);
      for await (const s of jobStates(ctx.states, signal)) yield create(WatchJobResponseSchema, { job: toProtoJob(s) });
    },
  };
  const observer: ServerInterceptor = (method, call) => {
    ctx.seen.push(method.path);
    return new ServerInterceptingCall(call);
  };
  const health = new HealthState([""]);
  health.setAll(Serving.SERVING);
  ctx.server = await startGrpcServer({
    address: "127.0.0.1:0",
    authToken: TOKEN,
    tls: undefined,
    maxQueryBytes: 1024,
    jobService: jobs,
    health,
    log,
    interceptors: [observer],
  });
});

test.after(async ({ server }) => {
  await server.stop(1000);
});

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), what);
};
const callLines = (lines: Ctx["lines"], method: string) => lines.filter((l) => l.msg === "grpc call" && l.method === method);

test("receive limit: far above the query limit, at least 16 MiB", () => {
  assert.is(receiveLimit(1024), 16 * 1024 ** 2);
  assert.is(receiveLimit(1024 ** 2), 16 * 1024 ** 2);
  assert.is(receiveLimit(8 * 1024 ** 2), 33 * 1024 ** 2);
});

test("jobStates: a state already final ends at once; an error after waiting states comes after them; abort ends a pending pull", async () => {
  const done = snapshot(JobStatus.DONE);
  const got: JobSnapshot[] = [];
  for await (const s of jobStates(of(done), new AbortController().signal)) got.push(s);
  assert.equal(got, [done]);

  const failing = new Subject<JobSnapshot>();
  const states = jobStates(failing, new AbortController().signal);
  const running = snapshot(JobStatus.RUNNING);
  failing.next(running);
  failing.error(new Error("store gone"));
  assert.is((await states.next()).value, running);
  assert.match(String(await states.next().catch((e) => e)), /store gone/);

  const quiet = new Subject<JobSnapshot>();
  const left = new AbortController();
  const pending = jobStates(quiet, left.signal).next();
  assert.ok(quiet.observed);
  left.abort();
  assert.equal(await pending, { value: undefined, done: true });
  assert.not.ok(quiet.observed, "unsubscribed");
});

test("without the token: UNAUTHENTICATED before the handler, logged at info, seen by extra interceptors; Health open", async (ctx) => {
  const client = new JobClient(ctx.server.address);
  try {
    const err = await client.createJob({ reportId: "r", queryId: "q", queryText: "SELECT 'body-never-logged'" }).catch((e) => e);
    assert.is(err.code, status.UNAUTHENTICATED);
    assert.is(await client.healthCheck(""), Serving.SERVING);
    await until(() => callLines(ctx.lines, "/grpc.health.v1.Health/Check").length === 1, "health call logged");
    const [line] = callLines(ctx.lines, "/chjob.v1.JobService/CreateJob");
    assert.is(line?.code, "UNAUTHENTICATED");
    assert.is(line?.level, 30);
    assert.type(line?.ms, "number");
    assert.ok(ctx.seen.includes("/chjob.v1.JobService/CreateJob") && ctx.seen.includes("/grpc.health.v1.Health/Check"));
    const health = callLines(ctx.lines, "/grpc.health.v1.Health/Check")[0];
    assert.is(health?.code, "OK");
    assert.is(health?.level, 20, "OK calls at debug");
    const text = JSON.stringify(ctx.lines);
    assert.not.ok(text.includes("body-never-logged"), "no request body in the log");
  } finally {
    client.close();
  }
});

test("a thrown domain error is its status; anything else INTERNAL with a generic message, the cause logged once", async (ctx) => {
  const client = new JobClient(ctx.server.address, { token: TOKEN });
  try {
    const invalid = await client.createJob({ reportId: "r", queryId: "q", queryText: "SELECT 1" }).catch((e) => e);
    assert.is(invalid.code, status.INVALID_ARGUMENT);
    assert.is(invalid.details, "query_text: is 8 bytes");
    const bug = await client.createJob({ reportId: "throw", queryId: "q", queryText: "SELECT 1" }).catch((e) => e);
    assert.is(bug.code, status.INTERNAL);
    assert.not.match(bug.details, /secret/);
    await until(() => callLines(ctx.lines, "/chjob.v1.JobService/CreateJob").length === 3, "three CreateJob lines");
    const [, invalidLine, bugLine] = callLines(ctx.lines, "/chjob.v1.JobService/CreateJob");
    assert.is(invalidLine?.code, "INVALID_ARGUMENT");
    assert.is(invalidLine?.level, 30);
    assert.is(bugLine?.code, "INTERNAL");
    assert.is(bugLine?.level, 40);
    assert.is(ctx.lines.filter((l) => l.msg === "unexpected error" && String(l.err).includes("a bug with a secret inside")).length, 1);
  } finally {
    client.close();
  }
});

test("a slow watcher: progress merged, every status change in order, the stream ends OK after the terminal state", async (ctx) => {
  const client = new JobClient(ctx.server.address, { token: TOKEN });
  try {
    const watch = client.watchJob(JOB_ID);
    watch.call.on("error", () => undefined); // (as the test ends early on failure)
    watch.call.pause();
    await until(() => ctx.states.observed, "the handler subscribed");
    ctx.states.next(snapshot(JobStatus.PENDING));
    for (let i = 1; i <= 400; i++) ctx.states.next(snapshot(JobStatus.RUNNING, i));
    ctx.states.next(snapshot(JobStatus.READING_RESULTS, 400));
    ctx.states.next(snapshot(JobStatus.DONE, 400));
    assert.not.ok(ctx.states.observed, "unsubscribed after the terminal state");
    watch.call.resume();
    const got: Array<[JobStatus, bigint]> = [];
    for await (const job of watch.states) got.push([job.status, job.progress!.rowsRead]);
    const statuses = got.map(([s]) => s).filter((s, i, all) => i === 0 || all[i - 1] !== s);
    assert.equal(statuses, [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.DONE]);
    assert.ok(got.length < 100, `${got.length} messages for 403 states`);
    assert.equal(got.filter(([s]) => s === JobStatus.RUNNING).at(-1), [JobStatus.RUNNING, 400n], "the newest progress arrives");
    await until(() => callLines(ctx.lines, "/chjob.v1.JobService/WatchJob").length === 1, "WatchJob logged");
    assert.is(callLines(ctx.lines, "/chjob.v1.JobService/WatchJob")[0]?.code, "OK");
    // The stream closed after its status: the handler was done by then, so nothing is aborted.
    assert.not.ok(ctx.signals.at(-1)!.aborted, "a call that ended normally aborts nothing");
  } finally {
    client.close();
  }
});

test("a watcher that goes away unsubscribes, its call logged CANCELLED", async (ctx) => {
  const client = new JobClient(ctx.server.address, { token: TOKEN });
  try {
    const before = callLines(ctx.lines, "/chjob.v1.JobService/WatchJob").length;
    const watch = client.watchJob(JOB_ID);
    watch.call.on("error", () => undefined);
    await until(() => ctx.states.observed, "the handler subscribed");
    ctx.states.next(snapshot(JobStatus.RUNNING, 1));
    watch.call.cancel();
    await until(() => !ctx.states.observed, "unsubscribed after the client left");
    const signal = ctx.signals.at(-1)!;
    assert.ok(signal.aborted, "the handler's signal aborted");
    // One shared reason: not a DOMException built (stack and all) for each call that ends.
    assert.instance(signal.reason, Error);
    assert.not.instance(signal.reason, DOMException);
    await until(() => callLines(ctx.lines, "/chjob.v1.JobService/WatchJob").length === before + 1, "the cancelled call logged");
    assert.is(callLines(ctx.lines, "/chjob.v1.JobService/WatchJob").at(-1)?.code, "CANCELLED");
  } finally {
    client.close();
  }
});

test("the token never reaches the log", ({ lines }) => {
  assert.not.ok(JSON.stringify(lines).includes(TOKEN));
});

test.run();
