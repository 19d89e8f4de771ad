// Behaviour of a real ClickHouse server (Debian `clickhouse-server` 18.16) with @clickhouse/client,
// through the harness in ./support/clickhouse-server.ts. Without the server these tests are skipped
// (and fail under CI=true, whose .ci/run installs it): ./support/requirements.ts.
//
// What 18.16 does differently from current ClickHouse, as checked below:
// - Errors read "Code: 62, e.displayText() = DB::Exception: ..., e.what() = DB::Exception" with no
//   "(TYPE_NAME)", so @clickhouse/client throws a plain Error without `code`/`type`.
// - No X-ClickHouse-Summary (result.summary is undefined), no X-ClickHouse-Query-Id, no progress
//   headers; system.query_log has read_rows/written_rows once flushed.
// - No s3() table function, no query parameters ({x:UInt8} / param_x).
// - A closed HTTP connection (abort_signal, request_timeout) does not stop the query.

import { createClient, ClickHouseLogLevel, type ClickHouseClient } from "@clickhouse/client";
import { existsSync } from "node:fs";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  clickHouseServerAvailable,
  clickHouseServerBinary,
  startClickHouseServer,
  type ClickHouseServerHandle,
} from "./support/clickhouse-server.js";
import { CLICKHOUSE_SERVER, requireProgram, whenAvailable } from "./support/requirements.js";

interface State {
  ch?: ClickHouseServerHandle;
  startError?: unknown;
  startMs?: number;
  clients: ClickHouseClient[];
}

const test = whenAvailable(
  requireProgram(CLICKHOUSE_SERVER),
  suite<State>("clickhouse-server (real server)", { clients: [] }),
);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function server(state: State): ClickHouseServerHandle {
  if (!clickHouseServerAvailable()) {
    throw new Error(
      "clickhouse-server is not installed: these tests need a real server " +
        "(apt-get install -y clickhouse-server clickhouse-client, as .ci/run does)",
    );
  }
  if (state.ch === undefined) throw state.startError ?? new Error("the ClickHouse server did not start");
  return state.ch;
}

function client(state: State, overrides: { password?: string; username?: string; request_timeout?: number } = {}) {
  const ch = server(state);
  const c = createClient({
    url: ch.httpUrl,
    username: overrides.username ?? ch.user,
    password: overrides.password ?? ch.password,
    database: ch.database,
    request_timeout: overrides.request_timeout ?? 30_000,
    log: { level: ClickHouseLogLevel.OFF },
  });
  state.clients.push(c);
  return c;
}

/** ClickHouse's code and message from an error of @clickhouse/client, for 18.16 and newer servers. */
function serverError(err: unknown): { code: number; message: string; type?: string; plainError: boolean } {
  if (!(err instanceof Error)) throw new Error(`not an Error: ${String(err)}`);
  const e = err as Error & { code?: unknown; type?: unknown };
  if (typeof e.code === "string" && /^\d+$/.test(e.code)) {
    return { code: Number(e.code), message: e.message, type: String(e.type), plainError: false };
  }
  // 18.16: "Code: 62, e.displayText() = DB::Exception: <message>, e.what() = DB::Exception"
  const m = /^Code: (\d+), e\.displayText\(\) = (?:DB::Exception: )?([\s\S]*?)(?:, e\.what\(\) = \S+)?\s*$/.exec(e.message);
  if (!m) throw new Error(`not a ClickHouse error: ${e.message}`);
  return { code: Number(m[1]), message: m[2]!, plainError: true };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected the promise to reject");
}

async function rows<T>(c: ClickHouseClient, query: string): Promise<T[]> {
  const result = await c.query({ query, format: "JSONEachRow" });
  return result.json<T>();
}

interface Proc {
  query_id: string;
  elapsed: number;
  read_rows: string;
  total_rows_approx: string;
  is_cancelled: number;
  query: string;
}

async function processes(c: ClickHouseClient, queryId: string): Promise<Proc[]> {
  return rows<Proc>(
    c,
    `SELECT query_id, elapsed, read_rows, total_rows_approx, is_cancelled, query FROM system.processes WHERE query_id = '${queryId}'`,
  );
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** 100 rows a second, read in blocks of 10: runs rows/100 seconds, with read_rows growing. */
function slowQuery(rowCount: number, tag: string): string {
  return `/* ${tag} */ SELECT count() FROM numbers(${rowCount}) WHERE NOT ignore(sleepEachRow(0.01)) SETTINGS max_block_size = 10`;
}

let idCounter = 0;
const newQueryId = (name: string) => `chjob-test-${name}-${process.pid}-${++idCounter}`;

async function killAndWait(admin: ClickHouseClient, queryId: string): Promise<void> {
  await admin.command({ query: `KILL QUERY WHERE query_id = '${queryId}' ASYNC` });
  await waitFor(`${queryId} to leave system.processes`, async () =>
    (await processes(admin, queryId)).length === 0 ? true : undefined,
  );
}

test.before(async (state) => {
  const t0 = Date.now();
  try {
    state.ch = await startClickHouseServer();
    state.startMs = Date.now() - t0;
  } catch (err) {
    state.startError = err;
  }
});

test.after(async (state) => {
  await Promise.all(state.clients.map((c) => c.close().catch(() => undefined)));
  await state.ch?.stop();
});

test("the server is installed and answers ping, with the configured user and database", async (state) => {
  assert.ok(clickHouseServerAvailable(), "clickhouse-server is not installed");
  const ch = server(state);
  assert.match(ch.httpUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.is(ch.httpUrl, `http://127.0.0.1:${ch.httpPort}`);
  assert.is.not(ch.httpPort, ch.tcpPort);
  assert.is(ch.dsn, `http://${ch.user}:${ch.password}@127.0.0.1:${ch.httpPort}/${ch.database}`);
  assert.ok(typeof ch.pid === "number");
  const c = client(state);
  const ping = await c.ping();
  assert.ok(ping.success);
  const [info] = await rows<{ v: string; db: string; dbs: string[] }>(
    c,
    "SELECT version() AS v, currentDatabase() AS db, (SELECT groupArray(name) FROM system.databases) AS dbs",
  );
  assert.ok(info!.v.startsWith("18.16."), `expected ClickHouse 18.16 (Debian), got ${info!.v}`);
  assert.is(info!.db, ch.database);
  assert.ok(info!.dbs.includes(ch.database));
  console.log(`    [clickhouse-server ${info!.v} at ${clickHouseServerBinary()} ready in ${state.startMs} ms]`);
});

test("/ping does not authenticate: ping() with a wrong password succeeds", async (state) => {
  const bad = client(state, { password: "wrong" });
  assert.ok((await bad.ping()).success);
});

test("a wrong password: HTTP 401, Code 193, plain Error (no code/type)", async (state) => {
  const ch = server(state);
  const err = await rejection(client(state, { password: "wrong" }).command({ query: "SELECT 1" }));
  const e = serverError(err);
  assert.is(e.code, 193);
  assert.is(e.message, `Wrong password for user ${ch.user}`);
  assert.ok(e.plainError, "18.16 errors have no (TYPE): @clickhouse/client cannot parse them");
  assert.is((err as Error).message, `Code: 193, e.displayText() = DB::Exception: Wrong password for user ${ch.user}, e.what() = DB::Exception\n`);
  assert.is((err as { code?: unknown }).code, undefined);
  assert.is((err as { type?: unknown }).type, undefined);

  const unknown = serverError(await rejection(client(state, { username: "nobody" }).command({ query: "SELECT 1" })));
  assert.is(unknown.code, 192);
  assert.is(unknown.message, "Unknown user nobody");
});

test("a syntax error: Code 62", async (state) => {
  const e = serverError(await rejection(client(state).command({ query: "SELEC 1" })));
  assert.is(e.code, 62);
  assert.match(e.message, /^Syntax error: failed at position 1: SELEC 1\. Expected one of: /);
});

test("INSERT INTO FUNCTION s3(...): Code 46 Unknown table function s3", async (state) => {
  const e = serverError(
    await rejection(
      client(state).command({
        query:
          "INSERT INTO FUNCTION s3('http://127.0.0.1:9/bucket/key.csv', 'key', 'secret', 'CSV', 'x UInt64') SELECT 1",
      }),
    ),
  );
  assert.is(e.code, 46);
  assert.is(e.message, "Unknown table function s3");
});

test("url() exists; query parameters and newer settings do not (Code 115)", async (state) => {
  const c = client(state);
  const tableFunctions = (await rows<{ name: string }>(c, "SELECT name FROM system.table_functions")).map((r) => r.name);
  assert.ok(tableFunctions.includes("url"));
  assert.not.ok(tableFunctions.includes("s3"));
  // url() to a closed port: a Poco error, not a DB::Exception.
  const urlErr = await rejection(
    c.command({ query: "INSERT INTO FUNCTION url('http://127.0.0.1:9/x.csv', 'CSV', 'x UInt64') SELECT 1" }),
  );
  assert.match((urlErr as Error).message, /^Poco::Exception\. Code: 1000, e\.code\(\) = 111, e\.displayText\(\) = Connection refused/);

  const params = serverError(
    await rejection(c.query({ query: "SELECT {x:UInt8} AS x", query_params: { x: 1 }, format: "JSONEachRow" })),
  );
  assert.is(params.code, 115);
  assert.is(params.message, "Unknown setting param_x");
  const setting = serverError(
    await rejection(c.command({ query: "SELECT 1", clickhouse_settings: { cancel_http_readonly_queries_on_client_close: 1 } })),
  );
  assert.is(setting.code, 115);
  assert.is(setting.message, "Unknown setting cancel_http_readonly_queries_on_client_close");
});

test("system.processes columns", async (state) => {
  const columns = (
    await rows<{ name: string }>(
      client(state),
      "SELECT name FROM system.columns WHERE database = 'system' AND table = 'processes'",
    )
  ).map((r) => r.name);
  for (const name of [
    "query_id",
    "user",
    "query",
    "elapsed",
    "is_cancelled",
    "read_rows",
    "read_bytes",
    "total_rows_approx",
    "written_rows",
    "written_bytes",
    "memory_usage",
    "peak_memory_usage",
    "http_user_agent",
  ]) {
    assert.ok(columns.includes(name), `system.processes has no ${name}: ${columns.join(", ")}`);
  }
  assert.equal(columns, [
    "is_initial_query", "user", "query_id", "address", "port", "initial_user", "initial_query_id",
    "initial_address", "initial_port", "interface", "os_user", "client_hostname", "client_name",
    "client_version_major", "client_version_minor", "client_version_patch", "client_revision",
    "http_method", "http_user_agent", "quota_key", "elapsed", "is_cancelled", "read_rows", "read_bytes",
    "total_rows_approx", "written_rows", "written_bytes", "memory_usage", "peak_memory_usage", "query",
    "thread_numbers", "ProfileEvents.Names", "ProfileEvents.Values", "Settings.Names", "Settings.Values",
  ]);
});

test("a running query shows in system.processes by query_id with growing read_rows; KILL QUERY ... ASYNC stops it (Code 394)", async (state) => {
  const c = client(state);
  const admin = client(state);
  const queryId = newQueryId("kill-async");
  const sql = slowQuery(1000, "chjob:kill-async");
  const t0 = Date.now();
  const running = rejection(c.command({ query: sql, query_id: queryId }));

  const first = await waitFor("the query in system.processes", async () => {
    const [p] = await processes(admin, queryId);
    return p !== undefined && Number(p.read_rows) > 0 ? p : undefined;
  });
  await sleep(400);
  const [second] = await processes(admin, queryId);
  assert.ok(second, "the query left system.processes early");
  assert.ok(Number(second!.read_rows) > Number(first.read_rows), `read_rows did not grow: ${first.read_rows} -> ${second!.read_rows}`);
  assert.ok(second!.elapsed > first.elapsed);
  assert.is(second!.total_rows_approx, "0"); // numbers(N) gives no estimate in 18.16
  assert.is(second!.is_cancelled, 0);
  assert.is(second!.query, sql); // stored verbatim, comment included (not re-formatted)

  const tKill = Date.now();
  const killed = await rows<{ kill_status: string; query_id: string; user: string; query: string }>(
    admin,
    `KILL QUERY WHERE query_id = '${queryId}' ASYNC`,
  );
  assert.equal(killed, [{ kill_status: "waiting", query_id: queryId, user: server(state).user, query: sql }]);
  const err = await running;
  const rejectMs = Date.now() - tKill;
  const e = serverError(err);
  assert.is(e.code, 394);
  assert.is(e.message, "Query was cancelled");
  assert.ok(rejectMs < 2000, `the killed query's promise took ${rejectMs} ms to reject`);
  assert.ok(Date.now() - t0 < 8000);
  assert.equal(await processes(admin, queryId), []);
  console.log(`    [KILL ASYNC: the client's promise rejected ${rejectMs} ms after the KILL]`);
});

test("KILL QUERY ... SYNC waits until the query is gone (kill_status 'finished')", async (state) => {
  const c = client(state);
  const admin = client(state);
  const queryId = newQueryId("kill-sync");
  const running = rejection(c.command({ query: slowQuery(1000, "chjob:kill-sync"), query_id: queryId }));
  await waitFor("the query in system.processes", async () => ((await processes(admin, queryId)).length ? true : undefined));
  const tKill = Date.now();
  const killed = await rows<{ kill_status: string }>(admin, `KILL QUERY WHERE query_id = '${queryId}' SYNC`);
  const killMs = Date.now() - tKill;
  assert.equal(killed.map((r) => r.kill_status), ["finished"]);
  assert.ok(killMs < 3000, `KILL ... SYNC took ${killMs} ms`);
  assert.is(serverError(await running).code, 394);
  assert.equal(await processes(admin, queryId), []);
  // Nothing to kill: no rows, no error.
  assert.equal(await rows(admin, "KILL QUERY WHERE query_id = 'no-such-query' SYNC"), []);
  console.log(`    [KILL SYNC took ${killMs} ms]`);
});

test("no X-ClickHouse-Summary: result.summary is undefined; system.query_log has the counts", async (state) => {
  const c = client(state);
  await c.command({ query: "CREATE TABLE IF NOT EXISTS summary_probe (x UInt64) ENGINE = MergeTree ORDER BY x" });
  const queryId = newQueryId("summary");
  const inserted = await c.command({
    query: "INSERT INTO summary_probe SELECT number FROM numbers(1000)",
    query_id: queryId,
  });
  assert.is(inserted.query_id, queryId);
  assert.is(inserted.summary, undefined);
  const headers = inserted.response_headers;
  assert.is(headers["x-clickhouse-summary"], undefined);
  assert.is(headers["x-clickhouse-query-id"], undefined);
  assert.ok(typeof headers["x-clickhouse-server-display-name"] === "string");

  const exec = await c.exec({
    query: "SELECT count() FROM summary_probe",
    clickhouse_settings: { send_progress_in_http_headers: 1, http_headers_progress_interval_ms: "100" },
  });
  exec.stream.resume();
  await new Promise((resolve) => exec.stream.on("end", resolve));
  assert.is(exec.summary, undefined);
  assert.is(exec.response_headers["x-clickhouse-progress"], undefined);

  const insert = await c.insert({ table: "summary_probe", values: [{ x: 1 }, { x: 2 }], format: "JSONEachRow" });
  assert.is(insert.summary, undefined);

  // query_log (enabled by the harness's config) is flushed every second; system.query_log exists
  // only after the first flush. SYSTEM FLUSH LOGS works on 18.16.
  await c.command({ query: "SYSTEM FLUSH LOGS" });
  const logged = await waitFor("the INSERT in system.query_log", async () => {
    const [row] = await rows<{ type: number; read_rows: string; written_rows: string }>(
      c,
      `SELECT type, read_rows, written_rows FROM system.query_log WHERE query_id = '${queryId}' AND type = 2`,
    );
    return row;
  });
  assert.is(logged.type, 2); // 1 QueryStart, 2 QueryFinish, 3 ExceptionBeforeStart, 4 ExceptionWhileProcessing
  assert.is(logged.written_rows, "1000");
  assert.is(logged.read_rows, "1000");
});

test("max_execution_time interrupts a query with Code 159, checked between blocks", async (state) => {
  const c = client(state);
  let t0 = Date.now();
  const e = serverError(
    await rejection(c.command({ query: slowQuery(1000, "chjob:timeout"), clickhouse_settings: { max_execution_time: 1 } })),
  );
  const ms = Date.now() - t0;
  assert.is(e.code, 159);
  assert.match(e.message, /^Timeout exceeded: elapsed 1\.\d+ seconds, maximum: 1$/);
  assert.ok(ms >= 900 && ms < 2500, `took ${ms} ms`);

  // One block that sleeps 2 s is not interrupted inside: the limit applies when it ends.
  t0 = Date.now();
  const e2 = serverError(
    await rejection(c.command({ query: "SELECT sleep(2)", clickhouse_settings: { max_execution_time: 1 } })),
  );
  const ms2 = Date.now() - t0;
  assert.is(e2.code, 159);
  assert.ok(ms2 >= 1900, `sleep(2) was interrupted after ${ms2} ms`);
  // sleep()/sleepEachRow() refuse more than 3 s per block.
  const e3 = serverError(await rejection(c.command({ query: "SELECT sleep(4)" })));
  assert.is(e3.code, 160);
  assert.is(e3.message, "The maximum sleep time is 3000000 microseconds. Requested: 4000000");
});

test("abort_signal rejects the promise but the query goes on running on the server", async (state) => {
  const c = client(state);
  const admin = client(state);
  const queryId = newQueryId("abort");
  const controller = new AbortController();
  const running = rejection(
    c.command({ query: slowQuery(1000, "chjob:abort"), query_id: queryId, abort_signal: controller.signal }),
  );
  await waitFor("the query in system.processes", async () => ((await processes(admin, queryId)).length ? true : undefined));
  controller.abort();
  const err = (await running) as Error;
  assert.is(err.message, "The user aborted a request.");
  await sleep(300);
  const [before] = await processes(admin, queryId);
  await sleep(500);
  const [after] = await processes(admin, queryId);
  assert.ok(before && after, "the aborted query stopped on the server");
  assert.is(after!.is_cancelled, 0);
  assert.ok(Number(after!.read_rows) > Number(before!.read_rows), "the aborted query is no longer reading");
  await killAndWait(admin, queryId);
});

test("request_timeout rejects with 'Timeout error.' and the query goes on running", async (state) => {
  const c = client(state, { request_timeout: 500 });
  const admin = client(state);
  const queryId = newQueryId("request-timeout");
  const t0 = Date.now();
  const err = (await rejection(c.command({ query: slowQuery(1000, "chjob:request-timeout"), query_id: queryId }))) as Error;
  const ms = Date.now() - t0;
  assert.is(err.message, "Timeout error.");
  assert.ok(ms >= 450 && ms < 2000, `took ${ms} ms`);
  await sleep(500);
  const [p] = await processes(admin, queryId);
  assert.ok(p, "the timed-out query stopped on the server");
  assert.is(p!.is_cancelled, 0);
  await killAndWait(admin, queryId);
});

test("a streamed SELECT killed after its first bytes: HTTP 200, the error text ends the body", async (state) => {
  const c = client(state);
  const admin = client(state);
  const queryId = newQueryId("stream");
  // ~1 MB per block: the response starts (headers, status 200) before the query ends.
  const result = await c.query({
    query:
      "SELECT number, hex(toFixedString('a', 500)) AS s FROM numbers(100000) WHERE NOT ignore(sleepEachRow(0.0001)) SETTINGS max_block_size = 1000",
    query_id: queryId,
    format: "TabSeparated",
  });
  await admin.command({ query: `KILL QUERY WHERE query_id = '${queryId}' ASYNC` });
  const text = await result.text(); // resolves: the client sees no error
  const lastLine = text.trimEnd().split("\n").at(-1)!;
  assert.is(lastLine, "Code: 394, e.displayText() = DB::Exception: Query was cancelled, e.what() = DB::Exception");
  assert.ok(text.split("\n").length < 100_000);
});

test("kill() and restart(): same ports, data kept", async (state) => {
  const ch = server(state);
  const c = client(state);
  await c.command({ query: "CREATE TABLE IF NOT EXISTS restart_probe (x UInt64) ENGINE = MergeTree ORDER BY x" });
  await c.command({ query: "INSERT INTO restart_probe SELECT number FROM numbers(10)" });
  const { httpPort, tcpPort } = ch;
  const pid = ch.pid;
  ch.kill(); // SIGKILL
  await waitFor("the server to die", async () => (ch.pid === undefined ? true : undefined), 5000);
  const t0 = Date.now();
  await ch.restart();
  const restartMs = Date.now() - t0;
  assert.is.not(ch.pid, pid);
  assert.is(ch.httpPort, httpPort);
  assert.is(ch.tcpPort, tcpPort);
  const c2 = client(state);
  assert.equal(await rows(c2, "SELECT count() AS n FROM restart_probe"), [{ n: "10" }]);
  const t1 = Date.now();
  await ch.restart(); // graceful this time
  const gracefulMs = Date.now() - t1;
  assert.equal(await rows(client(state), "SELECT count() AS n FROM restart_probe"), [{ n: "10" }]);
  console.log(`    [restart after SIGKILL: ${restartMs} ms; graceful restart: ${gracefulMs} ms]`);
});

test("stop() kills running queries, ends the server and removes its directory", async (state) => {
  const ch = server(state);
  const c = client(state);
  const queryId = newQueryId("stop");
  const running = rejection(c.command({ query: slowQuery(3000, "chjob:stop"), query_id: queryId }));
  const admin = client(state);
  await waitFor("the query in system.processes", async () => ((await processes(admin, queryId)).length ? true : undefined));
  await admin.close();
  const pid = ch.pid!;
  const t0 = Date.now();
  await ch.stop();
  const stopMs = Date.now() - t0;
  const err = await running;
  assert.ok(err instanceof Error);
  assert.ok(stopMs < 8000, `stop() took ${stopMs} ms`);
  assert.is(ch.pid, undefined);
  assert.throws(() => process.kill(pid, 0), /ESRCH/);
  assert.not.ok(existsSync(ch.dir), `${ch.dir} is still there`);
  await ch.stop(); // idempotent
  console.log(`    [stop() with a running query: ${stopMs} ms]`);
});

test.run();
