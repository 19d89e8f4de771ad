// The job pipeline end to end, with the real chDB, the real embedded S3 server
// and a real gRPC client over a socket.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import { chdbClient } from "../src/clickhouse/chdb.js";
import type { JobClient } from "../src/client.js";
import { getObject, listKeys, objectExists, s3Client } from "./support/s3.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

// A secret with a quote, a backslash and a double quote: the s3() arguments must be escaped.
const KEY_ID = "pipeline-key";
const SECRET = `pi'pe\\line"secret-0123456789`;
const LONG_QUERY = "SELECT sum(cityHash64(number)) AS s FROM numbers(1000000000000)";
const BIG_QUERY = "SELECT number AS n, toString(number * 7) AS s, number % 13 AS m FROM numbers(3000000)";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");

interface Ctx {
  svc: ServiceProcess;
  client: JobClient;
  s3: ReturnType<typeof s3Client>;
}
const test = suite<Ctx>("pipeline");

test.before(async (ctx) => {
  ctx.svc = await startService({
    env: {
      AWS_ACCESS_KEY_ID: KEY_ID,
      AWS_SECRET_ACCESS_KEY: SECRET,
      CHJOB_PROGRESS_INTERVAL: "100ms",
      // Results above 5 MiB are copied in 5 MiB parts, so the big export takes the UploadPartCopy path.
      CHJOB_MULTIPART_COPY_THRESHOLD: String(5 * 1024 * 1024),
      CHJOB_MULTIPART_COPY_PART_SIZE: String(5 * 1024 * 1024),
    },
  });
  ctx.client = ctx.svc.client();
  ctx.s3 = s3Client(ctx.svc.s3Endpoint, KEY_ID, SECRET);
});

test.after(async (ctx) => {
  assert.is(await ctx.svc.stop(), 0);
  const everything = ctx.svc.logs.join("\n") + ctx.svc.stderr.join("");
  // Every form the secret can take (raw, SQL-escaped, JSON-escaped) contains this part.
  assert.not.ok(everything.includes("secret-0123456789"), "the secret is not in the logs");
  ctx.svc.cleanup();
});

async function runToEnd(client: JobClient, req: { reportId: string; queryId: string; queryText: string }): Promise<{ created: Job; states: Job[] }> {
  const created = await client.createJob(req);
  const states = await collect(client.watchJob(created.id).states);
  return { created, states };
}

/** Status changes as a watcher saw them (progress-only repeats folded). */
const statuses = (states: Job[]) => states.map((s) => s.status).filter((s, i, all) => i === 0 || all[i - 1] !== s);

test("a big export: result and export objects hold exactly chDB's CSVWithNames bytes (multipart copy)", async ({ client, s3 }) => {
  const { states } = await runToEnd(client, { reportId: "big", queryId: "q1", queryText: `${BIG_QUERY} ;  \n` });
  const done = states.at(-1)!;
  assert.is(done.status, JobStatus.DONE, done.error);
  assert.is(done.resultUri, `s3://dekart-dev-local/${done.id}.csv`);
  assert.is(done.exportUri, "s3://dekart-dev-local/files/big/q1/result.csv");
  // The export ran alone: chDB's counters give exact figures.
  assert.is(Number(done.totalRows), 3_000_000);
  assert.ok(Number(done.bytesProcessed) >= 3_000_000 * 8, `bytes_processed ${done.bytesProcessed}`);

  const dir = mkdtempSync(join(tmpdir(), "chjob-direct-"));
  const direct = await chdbClient(dir);
  try {
    const expected = Buffer.from(await (await direct.query({ query: BIG_QUERY, format: "CSVWithNames" })).text());
    const result = await getObject(s3, done.resultUri);
    const exported = await getObject(s3, done.exportUri);
    assert.ok(expected.length > 40 * 1024 * 1024, `expected > 40 MiB, got ${expected.length}`);
    assert.is(Number(done.resultSize), expected.length);
    assert.is(sha(result), sha(expected), "result object");
    assert.is(sha(exported), sha(expected), "export object");
  } finally {
    await direct.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a watcher sees every status in order; 50 watchers see the same; a late watcher gets one message", async ({ client }) => {
  const created = await client.createJob({ reportId: "watch", queryId: "q", queryText: "SELECT number FROM numbers(2000000)" });
  const watchers = await Promise.all(Array.from({ length: 50 }, () => collect(client.watchJob(created.id).states)));
  for (const states of watchers) {
    const seen = statuses(states);
    assert.is(seen.at(-1), JobStatus.DONE);
    // Each watcher starts wherever the job was, and then sees every later status.
    const full = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.DONE];
    assert.equal(seen, full.slice(full.indexOf(seen[0]!)));
  }
  const late = await collect(client.watchJob(created.id).states);
  assert.is(late.length, 1);
  assert.is(late[0]!.status, JobStatus.DONE);
  assert.is(Number(late[0]!.totalRows) >= 0, true);
});

test("row figures: exact for an export that ran alone, absent (not 0) for one that overlapped another on chDB", async ({ client }) => {
  const alone = (await runToEnd(client, { reportId: "figures", queryId: "alone", queryText: "SELECT 1 AS one" })).states.at(-1)!;
  assert.is(alone.status, JobStatus.DONE);
  assert.is(alone.totalRows, 1n);
  const long = await client.createJob({ reportId: "figures", queryId: "long", queryText: "SELECT sum(cityHash64(number)) FROM numbers(100000000000)" });
  await waitFor(async () => (await client.getJob(long.id)).status === JobStatus.RUNNING);
  const beside = (await runToEnd(client, { reportId: "figures", queryId: "beside", queryText: "SELECT 1 AS one" })).states.at(-1)!;
  assert.is(beside.status, JobStatus.DONE);
  assert.is(beside.totalRows, undefined, "a figure the engine did not measure is absent");
  assert.is(beside.bytesProcessed, undefined);
  await client.cancelJob(long.id);
  // Right after a cancel the killed export may still be stopping: the next job reports 1 or nothing.
  const after = (await runToEnd(client, { reportId: "figures", queryId: "after", queryText: "SELECT 1 AS one" })).states.at(-1)!;
  assert.is(after.status, JobStatus.DONE);
  assert.ok(after.totalRows === undefined || after.totalRows === 1n, `total_rows ${after.totalRows}`);
});

test("progress is sampled while RUNNING", async ({ client }) => {
  const created = await client.createJob({ reportId: "progress", queryId: "q", queryText: "SELECT sum(cityHash64(number)) FROM numbers(3000000000)" });
  const states = await collect(client.watchJob(created.id).states);
  const running = states.filter((s) => s.status === JobStatus.RUNNING && s.progress && s.progress.rowsRead > 0n);
  assert.ok(running.length >= 2, `progress updates while running: ${running.length}`);
  const rows = running.map((s) => s.progress!.rowsRead);
  assert.ok(rows.every((r, i) => i === 0 || r >= rows[i - 1]!), "rows read never go down");
  assert.ok(running.at(-1)!.progress!.totalRowsToRead > 0n);
  assert.is(states.at(-1)!.status, JobStatus.DONE);
});

test("a failing query: FAILED with ClickHouse's message, no result object", async ({ client, s3 }) => {
  const { states } = await runToEnd(client, { reportId: "fail", queryId: "q", queryText: "SELECT no_such_column FROM numbers(3)" });
  const end = states.at(-1)!;
  assert.is(end.status, JobStatus.FAILED);
  assert.match(end.error, /^ClickHouse error 47 \(UNKNOWN_IDENTIFIER\): .*no_such_column/);
  assert.not.ok(end.error.includes(SECRET));
  assert.is(end.resultUri, "");
  assert.not.ok(await objectExists(s3, `s3://dekart-dev-local/${end.id}.csv`));
});

test("cancel stops a long export on the engine; the next job finishes promptly", async ({ client, s3 }) => {
  const long = await client.createJob({ reportId: "cancel", queryId: "q", queryText: LONG_QUERY });
  const watcher = collect(client.watchJob(long.id).states);
  await waitFor(async () => (await client.getJob(long.id)).status === JobStatus.RUNNING);
  await sleep(300);
  const cancelled = await client.cancelJob(long.id);
  assert.is(cancelled.status, JobStatus.CANCELLED);
  assert.is(cancelled.error, "cancelled by CancelJob");
  const seen = await watcher;
  assert.is(seen.at(-1)!.status, JobStatus.CANCELLED);
  const again = await client.cancelJob(long.id);
  assert.is(again.status, JobStatus.CANCELLED, "cancelling a finished job changes nothing");

  const started = Date.now();
  const { states } = await runToEnd(client, { reportId: "after-cancel", queryId: "q", queryText: "SELECT 1 AS one" });
  assert.is(states.at(-1)!.status, JobStatus.DONE);
  assert.ok(Date.now() - started < 5000, `next job took ${Date.now() - started} ms`);
  assert.not.ok(await objectExists(s3, `s3://dekart-dev-local/${long.id}.csv`));
});

test("a second job for the same report and query supersedes the first", async ({ client, s3 }) => {
  const first = await client.createJob({ reportId: "super", queryId: "q", queryText: LONG_QUERY });
  const firstStates = collect(client.watchJob(first.id).states);
  await waitFor(async () => (await client.getJob(first.id)).status === JobStatus.RUNNING);
  const second = await client.createJob({ reportId: "super", queryId: "q", queryText: "SELECT 'newest' AS v" });
  const a = (await firstStates).at(-1)!;
  assert.is(a.status, JobStatus.CANCELLED);
  assert.ok(a.error.includes(second.id), a.error);
  const b = (await collect(client.watchJob(second.id).states)).at(-1)!;
  assert.is(b.status, JobStatus.DONE, b.error);
  assert.is((await getObject(s3, b.exportUri)).toString(), '"v"\n"newest"\n');
  assert.is((await getObject(s3, b.resultUri)).toString(), '"v"\n"newest"\n');
});

test("ListJobs: newest first, filtered by report, paged with tokens bound to the listing", async ({ client }) => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await client.createJob({ reportId: "list", queryId: `q${i}`, queryText: `SELECT ${i}` })).id);
  const page1 = await client.listJobs({ reportId: "list", pageSize: 3 });
  assert.equal(page1.jobs.map((j) => j.id), ids.slice().reverse().slice(0, 3));
  assert.ok(page1.nextPageToken);
  const page2 = await client.listJobs({ reportId: "list", pageSize: 3, pageToken: page1.nextPageToken });
  assert.equal(page2.jobs.map((j) => j.id), ids.slice().reverse().slice(3));
  assert.is(page2.nextPageToken, "");
  const foreign = await client.listJobs({ reportId: "other", pageToken: page1.nextPageToken }).catch((e) => e);
  assert.is(foreign.code, status.INVALID_ARGUMENT);
  for (const id of ids) await collect(client.watchJob(id).states);
  const all = await client.listJobs({});
  assert.ok(all.jobs.length >= 5);
  assert.ok(all.jobs.every((j) => !JSON.stringify(j, (_k, v) => (typeof v === "bigint" ? String(v) : v)).includes(SECRET)));
});

test("no stray objects: only export paths and result objects in the bucket", async ({ s3 }) => {
  const keys = await listKeys(s3, "dekart-dev-local");
  for (const k of keys) assert.match(k, /^(files\/[A-Za-z0-9_-]+\/[A-Za-z0-9_-]+\/result\.csv|[0-9a-f-]{36}\.csv)$/);
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not reached in time");
    await sleep(50);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

test.run();
