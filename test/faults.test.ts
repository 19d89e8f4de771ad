// Faults, each reproduced for real (issue 5): S3 and ClickHouse unreachable or
// refusing at start and lost in the middle of a job, the service killed with
// SIGKILL mid-export, watchers that leave or never read, and a burst of 200
// jobs. README "Failure behaviour" describes what these tests observe.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import { HealthCheckResponse_ServingStatus as Health } from "../gen/grpc/health/v1/health_pb.js";
import { describeClickHouseError } from "../src/clickhouse/engine.js";
import { openEngine } from "../src/clickhouse/open.js";
import type { JobClient } from "../src/client.js";
import { startClickHouseServer, type ClickHouseServerHandle } from "./support/clickhouse-server.js";
import { closedPort, startCopyCutProxy, startStandaloneS3 } from "./support/fault-s3.js";
import { CLICKHOUSE_SERVER, requireProgram, whenAvailable } from "./support/requirements.js";
import { getObject, objectExists, s3Client } from "./support/s3.js";
import { cleanEnv, collect, MAIN, QUIET_ENV, startService, type ServiceProcess } from "./support/service.js";

const KEY_ID = "fault-key";
const SECRET = "fault-secret-7f3a9c0d1e2b";
const OUT_BUCKET = "fault-out";
const RESULT_BUCKET = "fault-results";
// ~470 MB of CSV: an export that takes several seconds here.
const ROWS = 30_000_000;
const BIG_EXPORT = `SELECT number, toString(number) FROM numbers(${ROWS})`;
// Reads 3e9 rows, writes one: seconds of progress updates, almost no memory.
const LONG_SCAN = "SELECT sum(cityHash64(number)) AS s FROM numbers(3000000000)";
// Twice as long, and each of its states ~16 KiB on the wire (the query text travels in every
// message): a stuck watcher's window fills after a few of them.
const PADDED_SCAN = `/* ${"padding ".repeat(2048)}*/ SELECT sum(cityHash64(number)) AS s FROM numbers(6000000000)`;

interface Ctx {
  ch?: ClickHouseServerHandle;
  /** Embedded service shared by the watcher tests and the burst. */
  svc?: ServiceProcess;
  startedAt?: number;
}
const test = suite<Ctx>("faults");
// The tests on a ClickHouse server: skipped without clickhouse-server (failed under CI=true).
const withClickHouseServer = whenAvailable(requireProgram(CLICKHOUSE_SERVER), test);

test.before.each((ctx) => {
  ctx.startedAt = Date.now();
});
test.after.each((ctx) => note(`test took ${Date.now() - ctx.startedAt!} ms`));

test.after(async (ctx) => {
  await ctx.ch?.stop();
  if (ctx.svc) {
    await ctx.svc.stop();
    ctx.svc.cleanup();
  }
});

// ---------------------------------------------------------------- at start

test("S3 unreachable at start: exits 1 within seconds, naming the endpoint and the bucket, no secret", async () => {
  const port = await closedPort();
  const run = await runUntilExit(s3Env(`http://127.0.0.1:${port}`));
  assert.is(run.code, 1, run.out);
  assert.ok(run.ms < 10_000, `took ${run.ms} ms`);
  note(`S3 unreachable: exit ${run.code} after ${run.ms} ms:`, run.out);
  assert.match(run.out, `chjob: could not start: AWS_ENDPOINT: http://127.0.0.1:${port}: S3 ListObjectsV2 s3://${OUT_BUCKET}: ECONNREFUSED`);
  assert.not.ok(run.out.includes(SECRET), "no secret in the output");
});

test("S3 refuses at start: wrong secret, unknown key id, missing bucket each exit 1 with S3's code and the bucket", async () => {
  const s3 = await startStandaloneS3({ buckets: [OUT_BUCKET, RESULT_BUCKET], accessKeyId: KEY_ID, secretAccessKey: SECRET });
  try {
    const wrongSecret = "not-the-secret-4242";
    const cases: Array<[string, Record<string, string>, string]> = [
      ["wrong secret", { ...s3Env(s3.endpoint), AWS_SECRET_ACCESS_KEY: wrongSecret }, `s3://${OUT_BUCKET}: SignatureDoesNotMatch`],
      ["unknown key id", { ...s3Env(s3.endpoint), AWS_ACCESS_KEY_ID: "no-such-key" }, `s3://${OUT_BUCKET}: InvalidAccessKeyId`],
      ["missing bucket", { ...s3Env(s3.endpoint), DEKART_CLOUD_STORAGE_BUCKET: "missing-bucket" }, "s3://missing-bucket: NoSuchBucket: The specified bucket does not exist"],
    ];
    for (const [name, env, expected] of cases) {
      const run = await runUntilExit(env);
      assert.is(run.code, 1, `${name}: ${run.out}`);
      note(`${name}: exit ${run.code} after ${run.ms} ms:`, run.out);
      assert.ok(run.out.includes(`could not start: AWS_ENDPOINT: ${s3.endpoint}: S3 ListObjectsV2 ${expected}`), `${name}: ${run.out}`);
      assert.not.ok(run.out.includes(SECRET) || run.out.includes(wrongSecret), `${name}: no secret in the output`);
    }
  } finally {
    await s3.cleanup();
  }
});

test("ClickHouse unreachable at start: exits 1 naming DEKART_CLICKHOUSE_DATA_CONNECTION and the endpoint, no password", async () => {
  const port = await closedPort();
  const password = "ch-pass-5d1e";
  const run = await runUntilExit({ DEKART_CLICKHOUSE_DATA_CONNECTION: `clickhouse://reader:${password}@127.0.0.1:${port}/analytics?dial_timeout=2s` });
  assert.is(run.code, 1, run.out);
  note(`ClickHouse unreachable: exit ${run.code} after ${run.ms} ms:`, run.out);
  assert.ok(
    run.out.includes(
      `chjob: could not start: DEKART_CLICKHOUSE_DATA_CONNECTION: ClickHouse at http://127.0.0.1:${port}/analytics as reader does not answer: ClickHouse is unreachable: connect ECONNREFUSED 127.0.0.1:${port} (ECONNREFUSED)`,
    ),
    run.out,
  );
  assert.not.ok(run.out.includes(password), "no password in the output");
});

// ---------------------------------------------------------------- S3 lost mid-job

test("S3 lost between the export and the copy: FAILED with the operation, the object and the network error; no result; the next job is DONE", async () => {
  const s3 = await startStandaloneS3({ buckets: [OUT_BUCKET, RESULT_BUCKET], accessKeyId: KEY_ID, secretAccessKey: SECRET });
  const proxy = await startCopyCutProxy(s3.endpoint);
  const svc = await startService({ env: s3Env(proxy.endpoint) });
  try {
    const client = svc.client();
    const job = await client.createJob({ reportId: "s3cut", queryId: "q", queryText: "SELECT number FROM numbers(1000)" });
    const states = await collect(client.watchJob(job.id).states);
    await proxy.cut;
    const end = states.at(-1)!;
    assert.equal(statuses(states).slice(-3), [JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.FAILED]);
    const port = new URL(proxy.endpoint).port;
    note("S3 cut before the copy:", end.error, svc.logs.filter((l) => l.includes('"level":40')));
    assert.is(end.error, `S3 CopyObject s3://${RESULT_BUCKET}/${job.id}.csv: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:${port} (is the S3 endpoint reachable?)`);
    assert.is(end.resultUri, "");

    await proxy.reopen();
    const reader = s3Client(s3.endpoint, KEY_ID, SECRET);
    assert.not.ok(await objectExists(reader, `s3://${RESULT_BUCKET}/${job.id}.csv`), "nothing at the result object");
    assert.ok(await objectExists(reader, end.exportUri), "the export itself was written");
    const next = await runJob(client, { reportId: "s3cut", queryId: "q2", queryText: "SELECT 1 AS one" });
    assert.is(next.status, JobStatus.DONE, next.error);
    assert.is((await getObject(reader, next.resultUri)).toString(), '"one"\n1\n');
    assertCleanLog(svc);
  } finally {
    await svc.stop();
    svc.cleanup();
    await proxy.close();
    await s3.cleanup();
  }
});

test("S3 silent during the copy (accepts, never answers): FAILED at CHJOB_JOB_TIMEOUT, no result, the slot is free again", async () => {
  const s3 = await startStandaloneS3({ buckets: [OUT_BUCKET, RESULT_BUCKET], accessKeyId: KEY_ID, secretAccessKey: SECRET });
  const proxy = await startCopyCutProxy(s3.endpoint, "hang");
  const svc = await startService({ env: { ...s3Env(proxy.endpoint), CHJOB_JOB_TIMEOUT: "3s", CHJOB_MAX_CONCURRENT_JOBS: "1" } });
  try {
    const client = svc.client();
    const started = Date.now();
    const job = await client.createJob({ reportId: "s3hang", queryId: "q", queryText: "SELECT 1 AS one" });
    const states = await collect(client.watchJob(job.id).states);
    const took = Date.now() - started;
    assert.equal(statuses(states).slice(-2), [JobStatus.READING_RESULTS, JobStatus.FAILED]);
    assert.is(states.at(-1)!.error, "the job ran longer than CHJOB_JOB_TIMEOUT (3s) and was stopped");
    assert.ok(took >= 3000 && took < 8000, `ended after ${took} ms`);
    const reader = s3Client(s3.endpoint, KEY_ID, SECRET);
    assert.not.ok(await objectExists(reader, `s3://${RESULT_BUCKET}/${job.id}.csv`), "nothing at the result object");
    // One slot: the next job runs only if the stuck copy gave it back.
    const next = await runJob(client, { reportId: "s3hang", queryId: "q", queryText: "SELECT 2 AS two" });
    assert.is(next.status, JobStatus.DONE, next.error);
    assertCleanLog(svc);
  } finally {
    await svc.stop();
    svc.cleanup();
    await proxy.close();
    await s3.cleanup();
  }
});

test("S3 lost mid-export and back within seconds: ClickHouse retries, the job ends DONE with the complete result", async () => {
  const rows = 20_000_000;
  const s3 = await startStandaloneS3({ buckets: [OUT_BUCKET, RESULT_BUCKET], accessKeyId: KEY_ID, secretAccessKey: SECRET });
  const svc = await startService({ env: { ...s3Env(s3.endpoint), CHJOB_PROGRESS_INTERVAL: "100ms" } });
  try {
    const client = svc.client();
    const job = await client.createJob({ reportId: "s3blip", queryId: "q", queryText: `SELECT number, toString(number) FROM numbers(${rows})` });
    const watching = collect(client.watchJob(job.id).states);
    await waitFor(async () => Number((await client.getJob(job.id)).progress?.rowsRead ?? 0) > 0, 20_000);
    const stoppedAt = Date.now();
    await s3.stop();
    await sleep(3000);
    assert.is((await client.getJob(job.id)).status, JobStatus.RUNNING, "still running while S3 is away");
    await s3.start();
    const end = (await watching).at(-1)!;
    note(`S3 away for 3 s mid-export: ${JobStatus[end.status]} ${Date.now() - stoppedAt} ms after S3 stopped`);
    assert.is(end.status, JobStatus.DONE, end.error);
    assert.is(Number(end.resultSize), csvSize(rows), "every row is in the result");
    const reader = s3Client(s3.endpoint, KEY_ID, SECRET);
    const tail = await reader.send(new GetObjectCommand({ Bucket: RESULT_BUCKET, Key: `${job.id}.csv`, Range: `bytes=${csvSize(rows) - 40}-${csvSize(rows) - 1}` }));
    const tailText = await tail.Body!.transformToString();
    assert.ok(tailText.endsWith(`\n${rows - 1},"${rows - 1}"\n`), JSON.stringify(tailText));
    assertCleanLog(svc);
  } finally {
    await svc.stop();
    svc.cleanup();
    await s3.cleanup();
  }
});

test("S3 lost mid-export for good: RUNNING until CHJOB_JOB_TIMEOUT, then FAILED; no result, no export object; DONE again once S3 is back", async () => {
  const s3 = await startStandaloneS3({ buckets: [OUT_BUCKET, RESULT_BUCKET], accessKeyId: KEY_ID, secretAccessKey: SECRET });
  const svc = await startService({ env: { ...s3Env(s3.endpoint), CHJOB_PROGRESS_INTERVAL: "100ms", CHJOB_JOB_TIMEOUT: "6s" } });
  try {
    const client = svc.client();
    const job = await client.createJob({ reportId: "s3gone", queryId: "q", queryText: BIG_EXPORT });
    const watching = collect(client.watchJob(job.id).states);
    // A third of the way: ClickHouse has uploaded parts of its multipart upload by then.
    await waitFor(async () => Number((await client.getJob(job.id)).progress?.rowsRead ?? 0) > ROWS / 3, 20_000);
    const stoppedAt = Date.now();
    await s3.stop();
    const end = (await watching).at(-1)!;
    note(`S3 gone mid-export: ${JobStatus[end.status]} ${Date.now() - stoppedAt} ms after S3 stopped: ${end.error}`);
    assert.is(end.status, JobStatus.FAILED);
    assert.is(end.error, "the job ran longer than CHJOB_JOB_TIMEOUT (6s) and was stopped");
    assert.is(end.resultUri, "");

    await s3.start();
    const reader = s3Client(s3.endpoint, KEY_ID, SECRET);
    assert.not.ok(await objectExists(reader, `s3://${RESULT_BUCKET}/${job.id}.csv`), "nothing at the result object");
    assert.not.ok(await objectExists(reader, end.exportUri), "the unfinished multipart export left no object");
    // ...but its parts stay on the S3 server as an incomplete multipart upload.
    assert.ok(readdirSync(join(s3.dir, OUT_BUCKET, "._S3rver_uploads")).length > 0, "an incomplete upload is left behind");
    const next = await runJob(client, { reportId: "s3gone", queryId: "q", queryText: "SELECT 'after' AS v" });
    assert.is(next.status, JobStatus.DONE, next.error);
    assert.is((await getObject(reader, next.exportUri)).toString(), '"v"\n"after"\n');
    assertCleanLog(svc);
  } finally {
    await svc.stop();
    svc.cleanup();
    await s3.cleanup();
  }
});

// ---------------------------------------------------------------- ClickHouse lost

withClickHouseServer("ClickHouse lost during a running query: the engine's promise rejects at once with 'unreachable'; ping works after restart", async (ctx) => {
  const ch = (ctx.ch ??= await startClickHouseServer());
  const engine = await openEngine(
    { kind: "http", url: ch.httpUrl, username: ch.user, password: ch.password, database: ch.database, connectTimeoutMs: 2000, skipVerify: false, mappedFrom: undefined },
    { maxConcurrent: 2, jobTimeoutMs: 60_000 },
  );
  try {
    // ~100 rows a second: runs for minutes unless stopped.
    const slow = "SELECT count() FROM numbers(100000) WHERE NOT ignore(sleepEachRow(0.01)) SETTINGS max_block_size = 10";
    const ref = { jobId: "0c7d9a52-3b1e-4f60-9a8b-1d2e3f4a5b6c", url: "unused" };
    const settled = engine.runExport(ref, slow, {}).then(() => undefined, (e: unknown) => e);
    await waitFor(async () => (await engine.sample([ref])).get(ref.jobId) !== undefined, 10_000);
    const killedAt = Date.now();
    ch.kill("SIGKILL");
    const err = await settled;
    note(`ClickHouse killed mid-query: rejected after ${Date.now() - killedAt} ms: ${describeClickHouseError(err)}`);
    assert.ok(Date.now() - killedAt < 3000, `rejected after ${Date.now() - killedAt} ms`);
    assert.match(describeClickHouseError(err), /^ClickHouse is unreachable: (socket hang up|read ECONNRESET) \(ECONNRESET\)$/);
    // A kept-alive socket of the dead server may answer the first ping with a reset.
    const down = await engine.ping().then(() => "ok", (e: unknown) => describeClickHouseError(e));
    assert.match(down, new RegExp(`^ClickHouse is unreachable: (connect ECONNREFUSED 127\\.0\\.0\\.1:${ch.httpPort} \\(ECONNREFUSED\\)|socket hang up \\(ECONNRESET\\))$`));
    await ch.restart();
    await engine.ping();
  } finally {
    await engine.close();
    if (ch.pid === undefined) await ch.restart();
  }
});

withClickHouseServer("ClickHouse down while the service runs: new jobs FAILED 'unreachable', health NOT_SERVING; back after restart", async (ctx) => {
  const ch = (ctx.ch ??= await startClickHouseServer());
  if (ch.pid === undefined) await ch.restart();
  const svc = await startService({ env: { DEKART_CLICKHOUSE_DATA_CONNECTION: ch.dsn, CHJOB_HEALTH_INTERVAL: "1s" } });
  try {
    const client = svc.client();
    assert.is(await client.healthCheck(), Health.SERVING);
    ch.kill("SIGKILL");
    await waitFor(async () => ch.pid === undefined, 5000);
    const down = await runJob(client, { reportId: "chdown", queryId: "q", queryText: "SELECT 1" });
    assert.is(down.status, JobStatus.FAILED);
    assert.match(down.error, new RegExp(`^ClickHouse is unreachable: (connect ECONNREFUSED 127\\.0\\.0\\.1:${ch.httpPort} \\(ECONNREFUSED\\)|socket hang up \\(ECONNRESET\\))$`));
    // The probe runs every CHJOB_HEALTH_INTERVAL (1 s here).
    const downAt = Date.now();
    await waitFor(async () => (await client.healthCheck()) === Health.NOT_SERVING, 15_000);
    note(`ClickHouse down: job error "${down.error}"; health NOT_SERVING after ${Date.now() - downAt} ms`);
    assert.is(await client.healthCheck("chjob.v1.JobService"), Health.NOT_SERVING);

    await ch.restart();
    // The next job reaches ClickHouse again: 18.16 then rejects the export's setting (it has no s3()).
    const up = await runJob(client, { reportId: "chdown", queryId: "q", queryText: "SELECT 1" });
    assert.is(up.status, JobStatus.FAILED);
    assert.match(up.error, /^ClickHouse error 115: Unknown setting s3_truncate_on_insert/);
    const upAt = Date.now();
    await waitFor(async () => (await client.healthCheck()) === Health.SERVING, 15_000);
    note(`ClickHouse back: job error "${up.error.slice(0, 80)}…"; health SERVING after ${Date.now() - upAt} ms`);
    assert.ok(svc.logs.some((l) => l.includes('"msg":"health: NOT_SERVING"') && /ECONNREFUSED|socket hang up/.test(l)), "the probe says why");
    assert.ok(svc.logs.some((l) => l.includes('"msg":"health: SERVING"')));
    assert.not.ok(svc.logs.join("\n").includes(ch.password), "no password in the log");
    assertCleanLog(svc, { allowWarn: true });
  } finally {
    await svc.stop();
    svc.cleanup();
  }
});

// SIGKILL and restarts: test/durability.test.ts.

// ---------------------------------------------------------------- watchers

async function shared(ctx: Ctx): Promise<ServiceProcess> {
  return (ctx.svc ??= await startService({ env: { CHJOB_PROGRESS_INTERVAL: "20ms" } }));
}

test("a watcher that disconnects mid-stream: the job ends DONE, the other watchers get every status and DONE", async (ctx) => {
  const svc = await shared(ctx);
  const client = svc.client();
  const job = await client.createJob({ reportId: "leave", queryId: "q", queryText: LONG_SCAN });
  const others = [collect(client.watchJob(job.id).states), collect(client.watchJob(job.id).states)];
  const leaving = client.watchJob(job.id);
  let seenByLeaver = 0;
  const left = (async () => {
    for await (const s of leaving.states) {
      seenByLeaver++;
      if (s.status === JobStatus.RUNNING && Number(s.progress?.rowsRead ?? 0) > 0) leaving.call.cancel();
    }
  })().then(() => undefined, (e: unknown) => e);
  const leftErr = (await left) as ServiceError;
  assert.is(leftErr?.code, grpcStatus.CANCELLED, "the leaving watcher's stream was cancelled");
  assert.ok(seenByLeaver > 0);
  assert.is((await client.getJob(job.id)).status, JobStatus.RUNNING, "the job goes on");
  for (const states of await Promise.all(others)) assertEveryStatusFrom(statuses(states));
  assert.is((await client.getJob(job.id)).status, JobStatus.DONE);
  assertCleanLog(svc);
});

test("a watcher that never reads: the job and another watcher are unaffected, memory stays bounded, the reader gets every status later", async (ctx) => {
  const svc = await shared(ctx);
  const client = svc.client();
  // Its own channel with a 1 KiB stream window: the server's writes block after a few messages.
  const stuckClient = svc.client({ channelOptions: { "grpc-node.flow_control_window": 1024 } });
  const job = await client.createJob({ reportId: "stuck", queryId: "q", queryText: PADDED_SCAN });
  const stuck = stuckClient.watchJob(job.id);
  // Reads until grpc-js's buffer is full, then nothing more: the 1 KiB window
  // closes and the server's writes report backpressure.
  stuck.call.pause();
  stuck.call.read(0);
  const received: Array<{ job: Job; at: number }> = [];
  // The baseline is taken once the export runs (chDB's own memory is in use by then).
  let rssBefore = 0;
  let rssMax = 0;
  for await (const s of client.watchJob(job.id).states) {
    received.push({ job: s, at: Date.now() });
    const rss = rssMb(svc.child.pid!);
    if (rssBefore === 0 && Number(s.progress?.rowsRead ?? 0) > 0) rssBefore = rss;
    rssMax = Math.max(rssMax, rss);
  }
  const done = received.at(-1)!;
  assert.is(done.job.status, JobStatus.DONE, done.job.error);
  assertEveryStatusFrom(statuses(received.map((r) => r.job)));
  const progress = received.filter((r) => r.job.status === JobStatus.RUNNING).length;
  assert.ok(progress >= 20, `the reading watcher got ${progress} progress updates`);
  const lag = done.at - timestampMs(done.job.updatedAt);
  assert.ok(lag < 1000, `DONE reached the reading watcher ${lag} ms after it happened`);

  await sleep(500);
  rssMax = Math.max(rssMax, rssMb(svc.child.pid!));
  assert.ok(rssMax - rssBefore < 50, `RSS grew from ${rssBefore} MB to ${rssMax} MB`);
  note(`stuck watcher: RSS ${rssBefore} -> ${rssMax} MB; reader got ${received.length} messages, DONE ${lag} ms after it happened`);

  stuck.call.resume();
  const late = await collect(stuck.states);
  assertEveryStatusFrom(statuses(late));
  note(`stuck watcher got ${late.length} messages after resuming`);
  assert.ok(late.length < received.length, `progress was merged for the stuck watcher (${late.length} messages vs ${received.length})`);
  const rows = late.filter((s) => s.status === JobStatus.RUNNING).map((s) => Number(s.progress?.rowsRead ?? 0));
  assert.ok(rows.every((r, i) => i === 0 || r >= rows[i - 1]!), "progress never goes back");
  assert.equal(late.at(-1), done.job);
  assertCleanLog(svc);
});

// ---------------------------------------------------------------- burst

test("200 jobs at once on 8 slots: all DONE, none lost, started in creation order, never more than 8 running", async (ctx) => {
  const svc = await shared(ctx);
  const client = svc.client();
  const logFrom = svc.logs.length;
  const n = 200;
  const started = Date.now();
  const created = await Promise.all(Array.from({ length: n }, (_, i) => client.createJob({ reportId: "burst", queryId: `q${i}`, queryText: `SELECT ${i} AS i` })));
  const ends = await Promise.all(created.map((j) => collect(client.watchJob(j.id).states).then((s) => s.at(-1)!)));
  note(`burst: ${n} jobs ended in ${Date.now() - started} ms`);
  assert.is(ends.filter((e) => e.status === JobStatus.DONE).length, n, ends.find((e) => e.status !== JobStatus.DONE)?.error);
  const s3 = s3Client(svc.s3Endpoint);
  for (const i of [0, 117, n - 1]) assert.is((await getObject(s3, ends[i]!.resultUri)).toString(), `"i"\n${i}\n`);

  const lines = svc.logs.slice(logFrom).map((l) => JSON.parse(l) as { msg: string; job?: string; report?: string; status?: string });
  const burst = lines.filter((l) => l.report === "burst");
  const createdOrder = burst.filter((l) => l.msg === "job created").map((l) => l.job);
  const runningOrder = burst.filter((l) => l.msg === "job status" && l.status === "RUNNING").map((l) => l.job);
  assert.is(createdOrder.length, n);
  assert.equal(runningOrder, createdOrder, "FIFO: jobs start in the order they were created");
  let running = 0;
  let most = 0;
  for (const l of burst.filter((l) => l.msg === "job status")) {
    if (l.status === "RUNNING") most = Math.max(most, ++running);
    if (l.status === "DONE" || l.status === "FAILED" || l.status === "CANCELLED") running--;
  }
  assert.ok(most <= 8, `at most 8 at once, saw ${most}`);
  note(`burst: at most ${most} running at once`);
  assertCleanLog(svc);
});

// ---------------------------------------------------------------- helpers

function s3Env(endpoint: string): Record<string, string> {
  return {
    AWS_ENDPOINT: endpoint,
    AWS_ACCESS_KEY_ID: KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET,
    DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: `${OUT_BUCKET}/files`,
    DEKART_CLOUD_STORAGE_BUCKET: RESULT_BUCKET,
  };
}

/** Runs `chjob serve` expecting it to exit before serving; its output (stdout and stderr) and how long it took. */
async function runUntilExit(env: Record<string, string>, timeoutMs = 30_000): Promise<{ code: number | null; out: string; ms: number }> {
  const cwd = mkdtempSync(join(tmpdir(), "chjob-fault-"));
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN, "serve"], {
    cwd,
    env: { ...cleanEnv(), ...QUIET_ENV, CHJOB_GRPC_ADDRESS: "127.0.0.1:0", CHJOB_EMBEDDED_S3_ADDRESS: "127.0.0.1:0", CHJOB_DEMO_ROWS: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    if (out.includes('"msg":"chjob serving"')) child.kill("SIGKILL");
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  clearTimeout(timer);
  rmSync(cwd, { recursive: true, force: true });
  if (out.includes('"msg":"chjob serving"')) throw new Error(`the service started instead of failing:\n${out}`);
  return { code, out, ms: Date.now() - started };
}

async function runJob(client: JobClient, req: { reportId: string; queryId: string; queryText: string }): Promise<Job> {
  const job = await client.createJob(req);
  return (await collect(client.watchJob(job.id).states)).at(-1)!;
}

/** Status changes as a watcher saw them (progress-only repeats folded). */
function statuses(states: Job[]): JobStatus[] {
  return states.map((s) => s.status).filter((s, i, all) => i === 0 || all[i - 1] !== s);
}

/** A successful job's statuses from wherever the watcher joined, none skipped. */
function assertEveryStatusFrom(seen: JobStatus[]): void {
  const full = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.DONE];
  assert.equal(seen, full.slice(Math.max(0, full.indexOf(seen[0]!))));
}

/** No unhandled rejection, no error or fatal line, no crash text in the service's output. */
function assertCleanLog(svc: ServiceProcess, opts: { allowWarn?: boolean } = {}): void {
  const bad = [...svc.logs, ...svc.stderr.join("").split("\n")].filter(
    (l) => /unhandled|UnhandledPromiseRejection|uncaught/i.test(l) || /"level":(50|60)/.test(l) || (!opts.allowWarn && /"level":40/.test(l) && !/could not remove the result object/.test(l)),
  );
  assert.equal(bad, [], "clean log");
}

/** Size of `SELECT number, toString(number) FROM numbers(rows)` as CSVWithNames. */
function csvSize(rows: number): number {
  let size = '"number","toString(number)"\n'.length;
  for (let digits = 1, from = 0; from < rows; digits++, from = from === 0 ? 10 : from * 10) {
    const to = Math.min(rows, from === 0 ? 10 : from * 10);
    size += (to - from) * (2 * digits + 4);
  }
  return size;
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return Math.round(kb / 1024);
}

function timestampMs(t: Job["updatedAt"]): number {
  return Number(t!.seconds) * 1000 + Math.floor(t!.nanos / 1e6);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`condition not reached in ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** What a run observed, on stderr with CHJOB_TEST_VERBOSE=1 (for the README's table). */
function note(...what: unknown[]): void {
  if (process.env.CHJOB_TEST_VERBOSE === "1") console.error("  [faults]", ...what);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

test.run();
