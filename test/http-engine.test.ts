// The HTTP engine against a real ClickHouse server (Debian's 18.16, started by
// the test): authentication, database, query id = job id, progress from
// system.processes, KILL QUERY, error mapping; and the service using it, where
// the export itself fails on the server (18.16 has no s3 table function).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus } from "../gen/chjob/v1/job_service_pb.js";
import { describeClickHouseError, clickHouseCode, type ClickHouseEngine } from "../src/clickhouse/engine.js";
import { openEngine } from "../src/clickhouse/open.js";
import type { ClickHouseTarget } from "../src/config/types.js";
import { startClickHouseServer, type ClickHouseServerHandle } from "./support/clickhouse-server.js";
import { CLICKHOUSE_SERVER, requireProgram, whenAvailable } from "./support/requirements.js";
import { collect, startService } from "./support/service.js";
import { objectExists, s3Client } from "./support/s3.js";

interface Ctx {
  ch: ClickHouseServerHandle;
  engine: ClickHouseEngine;
}
// Skipped without clickhouse-server (failed under CI=true): ./support/requirements.ts.
const test = whenAvailable(requireProgram(CLICKHOUSE_SERVER), suite<Ctx>("http engine (real ClickHouse server)"));

const target = (ch: ClickHouseServerHandle, password = ch.password): ClickHouseTarget => ({
  kind: "http",
  url: ch.httpUrl,
  username: ch.user,
  password,
  database: ch.database,
  connectTimeoutMs: 2000,
  skipVerify: false,
  mappedFrom: undefined,
});

// Reads ~100 rows a second, block by block: slow enough to watch and kill.
const SLOW = "SELECT count() FROM numbers(100000) WHERE NOT ignore(sleepEachRow(0.01)) SETTINGS max_block_size = 10";

test.before(async (ctx) => {
  ctx.ch = await startClickHouseServer({ password: "p'w/d%x" });
  ctx.engine = await openEngine(target(ctx.ch), { maxConcurrent: 2, jobTimeoutMs: 60_000 });
});

test.after(async (ctx) => {
  await ctx.engine?.close();
  await ctx.ch?.stop();
});

test("ping authenticates (SELECT 1, not /ping); a wrong password is ClickHouse's error 193", async ({ ch, engine }) => {
  await engine.ping();
  const wrong = await openEngine(target(ch, "wrong"), { maxConcurrent: 1, jobTimeoutMs: 1000 });
  try {
    const err = await wrong.ping().then(() => undefined, (e) => e);
    assert.ok(err, "a wrong password fails the ping");
    assert.is(clickHouseCode(err), 193);
    assert.match(describeClickHouseError(err), /^ClickHouse error 193: .*[Ww]rong password/);
  } finally {
    await wrong.close();
  }
});

test("the export runs with the job id as query_id; progress is sampled; KILL stops it with 394", async ({ engine }) => {
  const ref = { jobId: "5b0f3a1e-2c1d-4e5f-8a9b-0c1d2e3f4a5b", url: "unused-on-http" };
  const running = engine.runExport(ref, SLOW, {});
  const settled = running.then(() => "resolved", (e) => e);
  let sample;
  for (let i = 0; i < 50 && !sample?.rowsRead; i++) {
    await new Promise((r) => setTimeout(r, 100));
    sample = (await engine.sample([ref])).get(ref.jobId);
  }
  assert.ok(sample && sample.rowsRead > 0, `progress seen: ${JSON.stringify(sample)}`);
  assert.ok(sample!.elapsedMs > 0);
  const killedAt = Date.now();
  await engine.kill(ref);
  const err = await settled;
  assert.is(clickHouseCode(err), 394, String(err));
  assert.ok(Date.now() - killedAt < 3000, "stopped within seconds");
  assert.is((await engine.sample([ref])).size, 0, "gone from system.processes");
});

test("max_execution_time stops a query on the server (159)", async ({ engine }) => {
  const err = await engine.runExport({ jobId: "6b0f3a1e-2c1d-4e5f-8a9b-0c1d2e3f4a5b", url: "x" }, SLOW, { max_execution_time: 1 }).catch((e) => e);
  assert.is(clickHouseCode(err), 159);
});

test("a syntax error maps to code and message", async ({ engine }) => {
  const err = await engine.runExport({ jobId: "7b0f3a1e-2c1d-4e5f-8a9b-0c1d2e3f4a5b", url: "x" }, "SELEC 1", {}).catch((e) => e);
  assert.match(describeClickHouseError(err), /^ClickHouse error 62: Syntax error/);
});

test("the service on this server: the export fails on the server, the job is FAILED with its message, no result", async ({ ch }) => {
  const svc = await startService({ env: { DEKART_CLICKHOUSE_DATA_CONNECTION: ch.dsn.replace("http://", "clickhouse://") } });
  try {
    const client = svc.client();
    const job = await client.createJob({ reportId: "r", queryId: "q", queryText: "SELECT 1" });
    const end = (await collect(client.watchJob(job.id).states)).at(-1)!;
    assert.is(end.status, JobStatus.FAILED);
    // 18.16 knows neither s3_truncate_on_insert nor s3(): it rejects the setting first.
    assert.match(end.error, /^ClickHouse error (115: Unknown setting s3_truncate_on_insert|46: Unknown table function s3)/, end.error);
    assert.not.ok(end.error.includes("chjob-local-secret"));
    assert.not.ok(await objectExists(s3Client(svc.s3Endpoint), `s3://dekart-dev-local/${job.id}.csv`));
    assert.not.ok(svc.logs.join("\n").includes(ch.password), "the DSN password is not logged");
  } finally {
    assert.is(await svc.stop(), 0);
    svc.cleanup();
  }
});

test("ClickHouse unreachable at start: a clear exit naming the variable", async () => {
  const err = await startService({ env: { DEKART_CLICKHOUSE_DATA_CONNECTION: "http://u:topsecret@127.0.0.1:1/db" } }).catch((e: Error) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, /DEKART_CLICKHOUSE_DATA_CONNECTION: ClickHouse at http:\/\/127\.0\.0\.1:1/);
  assert.not.ok((err as Error).message.includes("topsecret"));
});

test.run();
