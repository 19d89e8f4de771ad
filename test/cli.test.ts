// The `chjob` command against a real running service (embedded chDB and S3), spawned
// as a user would run it (not a TTY): exit codes, output, Ctrl-C, errors, demo data.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Format, JobStatus } from "../gen/chjob/v1/job_service_pb.js";
import { HealthCheckRequestSchema, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Serving } from "../gen/grpc/health/v1/health_pb.js";
import type { JobClient } from "../src/client.js";
import { demoQueries } from "../src/demo/uk-price-paid.js";
import { getObject, s3Client } from "./support/s3.js";
import { cli, jobIdOf, must, show } from "./support/cli.js";
import { startService, type ServiceProcess } from "./support/service.js";

const LONG_QUERY = "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)";
const DEMO_ROWS = 50_000;

/**
 * The arguments of every `npx chjob run …` in the README's sh blocks, split as a shell would
 * (double-quoted strings may span lines; an unquoted newline or `|` ends the command).
 */
function readmeRunCommands(): string[][] {
  const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../../README.md"), "utf8");
  const commands: string[][] = [];
  for (const block of readme.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const text = block[1]!;
    for (const at of text.matchAll(/npx chjob run /g)) {
      const args = ["run"];
      let i = at.index! + at[0].length;
      let word: string | undefined;
      for (; i < text.length; i++) {
        const c = text[i]!;
        if (c === '"') {
          const end = text.indexOf('"', i + 1);
          word = (word ?? "") + text.slice(i + 1, end);
          i = end;
        } else if (c === " " || c === "\n" || c === "|") {
          if (word !== undefined) args.push(word);
          word = undefined;
          if (c !== " ") break;
        } else word = (word ?? "") + c;
      }
      if (word !== undefined) args.push(word);
      commands.push(args);
    }
  }
  return commands;
}

interface Ctx {
  svc: ServiceProcess;
  client: JobClient;
  at: string[];
  /** A finished job's id, for get/list/cancel. */
  doneId: string;
}
const test = suite<Ctx>("cli");

test.before(async (ctx) => {
  ctx.svc = await startService({ env: { CHJOB_DEMO_ROWS: String(DEMO_ROWS), CHJOB_PROGRESS_INTERVAL: "100ms" }, timeoutMs: 60_000 });
  ctx.client = ctx.svc.client();
  ctx.at = ["--address", ctx.svc.grpcAddress];
});

test.after(async (ctx) => {
  assert.is(await ctx.svc.stop(), 0);
  ctx.svc.cleanup();
});

test("run: a good query exits 0, one line per status change, and names the result", async (ctx) => {
  const r = await cli(["run", "SELECT number AS n FROM numbers(10)", "--report", "cli-test", "--query", "q1", ...ctx.at]);
  assert.is(r.code, 0, show(r));
  const id = jobIdOf(r);
  ctx.doneId = id;
  assert.match(r.stdout, `result_uri  s3://dekart-dev-local/${id}.csv`);
  assert.match(r.stdout, /^rows\s+10$/m);
  assert.match(r.stdout, /^size\s+\d+ B \(\d+ bytes\)$/m);
  assert.match(r.stdout, /^duration\s+\d+\.\d+s$/m);
  const statusLines = r.stdout.split("\n").filter((l) => l.startsWith(`job ${id}: `));
  assert.equal(
    statusLines.map((l) => l.slice(`job ${id}: `.length).split(" ")[0]),
    [...new Set(statusLines.map((l) => l.slice(`job ${id}: `.length).split(" ")[0]))],
    "no status twice (one line per status change, not per progress update)",
  );
  assert.is(statusLines.at(-1)!.split(" ")[2], "DONE");
  assert.not.match(r.stdout, "\x1b[", "no terminal control sequences when stdout is not a TTY");
  assert.is(r.stderr, "");
  // The hint names a command that works after `npm ci` (no global chjob on PATH).
  assert.match(r.stdout, `job ${id} created (report cli-test, query q1); follow it elsewhere with: npx chjob watch ${id}\n`);
  const job = await ctx.client.getJob(id);
  assert.is(job.status, JobStatus.DONE);
  assert.is(job.reportId, "cli-test");
  assert.is(job.queryId, "q1");
});

test("run: default ids are cli and a generated query id", async (ctx) => {
  const r = await cli(["run", "SELECT 1", ...ctx.at]);
  assert.is(r.code, 0, show(r));
  const job = await ctx.client.getJob(jobIdOf(r));
  assert.is(job.reportId, "cli");
  assert.match(job.queryId, /^[A-Za-z0-9_-]{1,128}$/);
  const again = await cli(["run", "SELECT 1", ...ctx.at]);
  assert.is.not((await ctx.client.getJob(jobIdOf(again))).queryId, job.queryId, "a new query id each time (no superseding)");
});

test("run: a failing query exits 1 with ClickHouse's message on stderr", async (ctx) => {
  const r = await cli(["run", "SELECT no_such_column FROM numbers(3)", ...ctx.at]);
  assert.is(r.code, 1, show(r));
  const id = jobIdOf(r);
  assert.match(r.stdout, `job ${id}: FAILED`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.is(lines.length, 1, show(r));
  assert.match(lines[0]!, `chjob: job ${id} failed: `);
  assert.match(lines[0]!, /UNKNOWN_IDENTIFIER|no_such_column/);
  assert.not.match(r.stderr, /\n\s+at /, "no stack trace");
});

test("run: Ctrl-C (SIGINT) cancels the job on the server and exits 2", async (ctx) => {
  let sent = false;
  const r = await cli(["run", LONG_QUERY, ...ctx.at], {
    onStdout: (child, stdout) => {
      if (!sent && /: RUNNING/.test(stdout)) {
        sent = true;
        child.kill("SIGINT");
      }
    },
  });
  assert.ok(sent, `the RUNNING line never came:\n${show(r)}`);
  assert.is(r.code, 2, show(r));
  const id = jobIdOf(r);
  assert.match(r.stdout, `job ${id}: CANCELLED`);
  assert.match(r.stderr, `cancelling job ${id}`);
  const job = await ctx.client.getJob(id);
  assert.is(job.status, JobStatus.CANCELLED, job.error);
  assert.match(job.error, /CancelJob/);
});

test("run --json: one protobuf-JSON Job per line, the last one DONE", async (ctx) => {
  const r = await cli(["run", "--json", "SELECT count() AS n FROM numbers(100000)", ...ctx.at]);
  assert.is(r.code, 0, show(r));
  const lines = r.stdout.trimEnd().split("\n");
  const jobs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(jobs.length >= 2, show(r));
  const last = jobs.at(-1)!;
  assert.is(last.status, "JOB_STATUS_DONE");
  assert.is(typeof last.resultSize, "string", "int64 as a string");
  assert.match(last.resultUri as string, /^s3:\/\/dekart-dev-local\/.+\.csv$/);
  // Measured (1) or, when another export overlapped it on chDB, absent: never a made-up 0.
  assert.ok(last.totalRows === "1" || last.totalRows === undefined, `totalRows ${String(last.totalRows)}`);
  assert.ok(jobs.every((j) => j.id === last.id));
  assert.ok(jobs.slice(0, -1).every((j) => j.status !== "JOB_STATUS_DONE"), "DONE comes once, last");
});

test("run --json: a failed job's last object is FAILED, exit 1", async (ctx) => {
  const r = await cli(["run", "--json", "SELECT throwIf(1, 'boom from the test')", ...ctx.at]);
  assert.is(r.code, 1, show(r));
  const last = JSON.parse(r.stdout.trimEnd().split("\n").at(-1)!) as { status: string; error: string };
  assert.is(last.status, "JOB_STATUS_FAILED");
  assert.match(last.error, "boom from the test");
  assert.match(r.stderr, "boom from the test");
});

test("run: a query the service rejects → its message on one line, exit 3", async (ctx) => {
  const r = await cli(["run", "DROP TABLE uk_price_paid", ...ctx.at]);
  assert.is(r.code, 3, show(r));
  assert.is(r.stderr, 'chjob: INVALID_ARGUMENT: query_text: must be a SELECT query (starting with SELECT, WITH or "("); it starts with DROP\n');
  const bad = await cli(["run", "--report", "a/b", "SELECT 1", ...ctx.at]);
  assert.is(bad.code, 3, show(bad));
  assert.match(bad.stderr, /^chjob: --report: "a\/b" must be 1-128 characters/);
});

test("run: --format, --gzip, --zstd, --reuse, the limits and --timeout reach the job; the summary shows format and reused_from", async (ctx) => {
  const parquet = await cli(
    ["run", "--format", "parquet", "--max-rows-to-read", "1000", "--max-bytes-to-read", "1000000", "--max-result-bytes", "1000000", "--timeout", "30s", "SELECT number AS n FROM numbers(10)", ...ctx.at],
  );
  assert.is(parquet.code, 0, show(parquet));
  const pq = await ctx.client.getJob(jobIdOf(parquet));
  assert.is(pq.format, Format.PARQUET);
  assert.match(parquet.stdout, new RegExp(`^result_uri\\s+s3://dekart-dev-local/${pq.id}\\.parquet$`, "m"));
  assert.match(parquet.stdout, /^format\s+Parquet$/m);
  assert.not.match(parquet.stdout, /^result_url/m, "no result_url without CHJOB_PRESIGN_TTL");

  const gzip = await cli(["run", "--gzip", "SELECT 1", ...ctx.at]);
  assert.is(gzip.code, 0, show(gzip));
  assert.match(gzip.stdout, /^result_uri\s+\S+\.csv\.gz$/m);
  assert.match(gzip.stdout, /^format\s+CSVWithNames, gzip$/m);
  const zstd = await cli(["run", "--format", "jsonl", "--zstd", "SELECT 1", ...ctx.at]);
  assert.is(zstd.code, 0, show(zstd));
  assert.match(zstd.stdout, /^result_uri\s+\S+\.jsonl\.zst$/m);
  assert.match(zstd.stdout, /^format\s+JSONEachRow, zstd$/m);

  const first = await cli(["run", "--reuse", "1h", "SELECT 4242 AS answer", ...ctx.at]);
  assert.is(first.code, 0, show(first));
  assert.not.match(first.stdout, /^reused_from/m);
  const again = await cli(["run", "--reuse", "1h", "SELECT  4242 AS answer;", ...ctx.at]);
  assert.is(again.code, 0, show(again));
  assert.match(again.stdout, new RegExp(`^reused_from\\s+${jobIdOf(first)} \\(its result copied; the query did not run\\)$`, "m"));
  assert.is((await ctx.client.getJob(jobIdOf(again))).reusedFrom, jobIdOf(first));

  const rows = await cli(["run", "--max-rows-to-read", "5", "SELECT count() FROM numbers(1000)", ...ctx.at]);
  assert.is(rows.code, 1, show(rows));
  assert.match(rows.stderr, /max_rows_to_read/);
  const bytes = await cli(["run", "--max-result-bytes", "10", "SELECT number FROM numbers(100000)", ...ctx.at]);
  assert.is(bytes.code, 1, show(bytes));
  assert.match(bytes.stderr, /max_result_bytes \(10 bytes\)/);
  const slow = await cli(["run", "--timeout", "1s", "SELECT sleepEachRow(0.1) FROM numbers(100) SETTINGS max_block_size = 10", ...ctx.at]);
  assert.is(slow.code, 1, show(slow));
  assert.match(slow.stderr, /its timeout \(1s\)/);
});

test("run: bad result flags are usage errors (exit 3), ours before anything is sent, the service's with its message", async (ctx) => {
  const local: Array<[string[], string]> = [
    [["--format", "xml"], "chjob: option '--format <format>' argument 'xml' is invalid. Allowed choices are csv, parquet, jsonl, arrow, tsv.\nchjob: `chjob run --help` lists its options\n"],
    [["--gzip", "--zstd"], "chjob: option '--gzip' cannot be used with option '--zstd'\nchjob: `chjob run --help` lists its options\n"],
    [["--reuse", "soon"], 'chjob: --reuse: "soon" is not a duration; use e.g. 90s, 30m or 1h30m\n'],
    [["--timeout", "0"], "chjob: --timeout: must be longer than 0; use e.g. 90s, 30m or 1h30m\n"],
    [["--max-rows-to-read", "0"], 'chjob: --max-rows-to-read: "0" is not a whole number ≥ 1\n'],
    [["--max-result-bytes", "1e6"], 'chjob: --max-result-bytes: "1e6" is not a whole number ≥ 1\n'],
  ];
  for (const [flags, stderr] of local) {
    // An unreachable address: these fail before any connection is tried.
    const r = await cli(["run", ...flags, "SELECT 1", "--address", "127.0.0.1:1"]);
    assert.is(r.code, 3, show(r));
    assert.is(r.stderr, stderr, show(r));
  }
  const parquetGzip = await cli(["run", "--format", "parquet", "--gzip", "SELECT 1", ...ctx.at]);
  assert.is(parquetGzip.code, 3, show(parquetGzip));
  assert.match(parquetGzip.stderr, /^chjob: INVALID_ARGUMENT: compression: must be NONE \(or unset\) with PARQUET/);
  const longer = await cli(["run", "--timeout", "1h", "SELECT 1", ...ctx.at]);
  assert.is(longer.code, 3, show(longer));
  assert.match(longer.stderr, /^chjob: INVALID_ARGUMENT: timeout: .*CHJOB_JOB_TIMEOUT/);
});

test("fetch from a service without CHJOB_PRESIGN_TTL: no result_url, a clear error, exit 3, no file", async (ctx) => {
  assert.is((await ctx.client.getJob(ctx.doneId)).resultUrl, "");
  const cwd = mkdtempSync(join(tmpdir(), "chjob-cli-fetch-"));
  try {
    const r = await cli(["fetch", ctx.doneId, ...ctx.at], { cwd });
    assert.is(r.code, 3, show(r));
    assert.match(r.stderr, `chjob: job ${ctx.doneId} has no result_url: the service signs download URLs only when CHJOB_PRESIGN_TTL is set`);
    assert.is(r.stderr.split("\n").length, 2, "one line");
    assert.equal(readdirSync(cwd), []);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("list shows the job in an aligned table, and --json one object per line", async (ctx) => {
  const r = await cli(["list", ...ctx.at]);
  assert.is(r.code, 0, show(r));
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^ID\s+REPORT\s+QUERY\s+STATUS\s+ROWS\s+SIZE\s+CREATED$/);
  const row = lines.find((l) => l.startsWith(ctx.doneId));
  assert.ok(row, show(r));
  assert.match(row!, /^\S+\s+cli-test\s+q1\s+DONE\s+10\s+\d+ B\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  assert.is(lines[0]!.indexOf("STATUS"), row!.indexOf("DONE"), "columns aligned");

  const byReport = await cli(["list", "--report", "cli-test", "--json", ...ctx.at]);
  assert.is(byReport.code, 0, show(byReport));
  const jobs = byReport.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as { id: string; reportId: string });
  assert.equal(
    jobs.map((j) => j.id),
    [ctx.doneId],
  );

  const limited = await cli(["list", "--limit", "2", "--json", ...ctx.at]);
  assert.is(limited.stdout.trimEnd().split("\n").length, 2, show(limited));
});

test("get and cancel of a finished job; watch of a finished job exits with its code", async (ctx) => {
  const get = await cli(["get", ctx.doneId, ...ctx.at]);
  assert.is(get.code, 0, show(get));
  assert.match(get.stdout, /^status\s+DONE$/m);
  assert.match(get.stdout, new RegExp(`^result_uri\\s+s3://dekart-dev-local/${ctx.doneId}\\.csv$`, "m"));

  const json = await cli(["get", "--json", ctx.doneId, ...ctx.at]);
  assert.is((JSON.parse(json.stdout) as { status: string }).status, "JOB_STATUS_DONE");

  const cancel = await cli(["cancel", ctx.doneId, ...ctx.at]);
  assert.is(cancel.code, 0, show(cancel));
  assert.match(cancel.stdout, "had already finished (DONE); nothing to cancel");
  assert.is((await ctx.client.getJob(ctx.doneId)).status, JobStatus.DONE);

  const watch = await cli(["watch", ctx.doneId, ...ctx.at]);
  assert.is(watch.code, 0, show(watch));
  assert.match(watch.stdout, `result_uri  s3://dekart-dev-local/${ctx.doneId}.csv`);
});

test("get/watch/cancel of an unknown job → NOT_FOUND message, exit 3", async (ctx) => {
  const missing = "00000000-0000-4000-8000-000000000000";
  for (const cmd of ["get", "watch", "cancel"]) {
    const r = await cli([cmd, missing, ...ctx.at]);
    assert.is(r.code, 3, show(r));
    assert.is(r.stderr, `chjob: NOT_FOUND: no job with id ${missing} (finished jobs are kept for CHJOB_JOB_RETENTION)\n`, cmd);
  }
  const bad = await cli(["get", "not-a-uuid", ...ctx.at]);
  assert.is(bad.code, 3);
  assert.match(bad.stderr, /^chjob: INVALID_ARGUMENT: job_id: /);
});

test("watch follows a running job; cancel from elsewhere ends it with exit 2", async (ctx) => {
  const created = await ctx.client.createJob({ reportId: "cli-test", queryId: "watched", queryText: LONG_QUERY });
  let cancelled = false;
  const r = await cli(["watch", created.id, ...ctx.at], {
    onStdout: (_child, stdout) => {
      if (!cancelled && /: RUNNING/.test(stdout)) {
        cancelled = true;
        void cli(["cancel", created.id, ...ctx.at]);
      }
    },
  });
  assert.is(r.code, 2, show(r));
  assert.match(r.stdout, `job ${created.id}: CANCELLED (cancelled by CancelJob)`);
});

test("watch: Ctrl-C leaves the job running and exits 130", async (ctx) => {
  const created = await ctx.client.createJob({ reportId: "cli-test", queryId: "left", queryText: LONG_QUERY });
  let sent = false;
  const r = await cli(["watch", created.id, ...ctx.at], {
    onStdout: (child, stdout) => {
      if (!sent && /: RUNNING/.test(stdout)) {
        sent = true;
        child.kill("SIGINT");
      }
    },
  });
  assert.is(r.code, 130, show(r));
  assert.match(r.stderr, "keeps running on the server");
  assert.is((await ctx.client.getJob(created.id)).status, JobStatus.RUNNING);
  await ctx.client.cancelJob(created.id);
});

test("an unreachable service: one line naming the address and what to check, exit 3, fast", async () => {
  for (const cmd of [["run", "SELECT 1"], ["list"], ["get", "00000000-0000-4000-8000-000000000000"]]) {
    const r = await cli([...cmd, "--address", "127.0.0.1:1"]);
    assert.is(r.code, 3, show(r));
    assert.ok(r.ms < 5000, `took ${r.ms} ms`);
    assert.is(r.stdout, "");
    const lines = r.stderr.trimEnd().split("\n");
    assert.is(lines.length, 1, show(r));
    assert.match(lines[0]!, /^chjob: cannot reach the chjob service at 127\.0\.0\.1:1 \(.*ECONNREFUSED.*\)\. Is `chjob serve` running there\? Check --address or CHJOB_GRPC_ADDRESS/);
  }
});

test("health: SERVING, exit 0, for the server and chjob.v1.JobService, at CHJOB_GRPC_ADDRESS 0.0.0.0 too (the container's)", async (ctx) => {
  for (const extra of [[], ["--service", "chjob.v1.JobService"]]) {
    const r = await cli(["health", ...extra, ...ctx.at]);
    assert.is(r.code, 0, show(r));
    assert.is(r.stdout, "SERVING\n", show(r));
    assert.is(r.stderr, "", show(r));
  }
  const listenAll = ctx.svc.grpcAddress.replace(/^127\.0\.0\.1:/, "0.0.0.0:");
  assert.match(listenAll, /^0\.0\.0\.0:\d+$/);
  const fromEnv = await cli(["health"], { env: { CHJOB_GRPC_ADDRESS: listenAll } });
  assert.is(fromEnv.code, 0, show(fromEnv));
  const unknown = await cli(["health", "--service", "nope", ...ctx.at]);
  assert.is(unknown.code, 1, show(unknown));
  assert.is(unknown.stderr, `chjob: cannot get the health of nope at ${ctx.svc.grpcAddress} (the service does not know "nope")\n`);
});

/** A grpc.health.v1 server whose Check answers `status`, or never ("silent"). */
async function fakeHealth(status: Serving | "silent"): Promise<{ address: string; close: () => void }> {
  const server = new grpc.Server();
  const check: grpc.MethodDefinition<unknown, unknown> = {
    path: "/grpc.health.v1.Health/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: (m) => Buffer.from(toBinary(HealthCheckRequestSchema, m as never)),
    requestDeserialize: (b) => fromBinary(HealthCheckRequestSchema, b),
    responseSerialize: (m) => Buffer.from(toBinary(HealthCheckResponseSchema, m as never)),
    responseDeserialize: (b) => fromBinary(HealthCheckResponseSchema, b),
  };
  server.addService({ check }, {
    check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
      if (status !== "silent") callback(null, create(HealthCheckResponseSchema, { status }));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}

test("health: NOT_SERVING, no answer in time, or nothing listening → exit 1; a bad --timeout → 3", async () => {
  const notServing = await fakeHealth(Serving.NOT_SERVING);
  const silent = await fakeHealth("silent");
  try {
    const r = await cli(["health", "--address", notServing.address]);
    assert.is(r.code, 1, show(r));
    assert.is(r.stdout, "NOT_SERVING\n", show(r));
    const slow = await cli(["health", "--address", silent.address, "--timeout", "300ms"]);
    assert.is(slow.code, 1, show(slow));
    assert.is(slow.stdout, "");
    assert.is(slow.stderr, `chjob: cannot get the health of the chjob service at ${silent.address} (no answer within 300ms)\n`);
  } finally {
    notServing.close();
    silent.close();
  }
  const down = await cli(["health", "--address", "127.0.0.1:1"]);
  assert.is(down.code, 1, show(down));
  assert.ok(down.ms < 5000, `took ${down.ms} ms`);
  assert.is(down.stdout, "");
  assert.match(down.stderr, /^chjob: cannot get the health of the chjob service at 127\.0\.0\.1:1 \(.*ECONNREFUSED.*\)\n$/);
  const bad = await cli(["health", "--timeout", "soon", "--address", "127.0.0.1:1"]);
  assert.is(bad.code, 3, show(bad));
  assert.is(bad.stderr, 'chjob: --timeout: "soon" is not a duration such as 2s or 500ms\n');
});

test("the address defaults to CHJOB_GRPC_ADDRESS", async (ctx) => {
  const r = await cli(["list", "--limit", "1"], { env: { CHJOB_GRPC_ADDRESS: ctx.svc.grpcAddress } });
  assert.is(r.code, 0, show(r));
  const unset = await cli(["list"], { env: { CHJOB_GRPC_ADDRESS: "127.0.0.1:2" } });
  assert.is(unset.code, 3);
  assert.match(unset.stderr, "127.0.0.1:2");
});

test("usage errors exit 3, every stderr line starting with chjob: (commander's own too)", async () => {
  const cases: Array<[string[], string]> = [
    [["run"], "chjob: missing required argument 'sql'\nchjob: `chjob run --help` lists its options\n"],
    [["frobnicate"], "chjob: unknown command 'frobnicate'\nchjob: `chjob --help` lists the commands\n"],
    [["list", "--jsn"], "chjob: unknown option '--jsn' (Did you mean --json?)\nchjob: `chjob list --help` lists its options\n"],
    [["watch", "a", "b"], "chjob: too many arguments for 'watch'. Expected 1 argument but got 2.\nchjob: `chjob watch --help` lists its options\n"],
    [["run", "--report"], "chjob: option '--report <id>' argument missing\nchjob: `chjob run --help` lists its options\n"],
    [["list", "--limit", "zero", "--address", "127.0.0.1:1"], 'chjob: --limit: "zero" is not a whole number ≥ 1\n'],
  ];
  for (const [args, stderr] of cases) {
    const r = await cli(args);
    assert.is(r.code, 3, show(r));
    assert.is(r.stderr, stderr, show(r));
    assert.is(r.stdout, "", show(r));
  }
  // No command at all: the help on stderr, and a usage error.
  const bare = await cli([]);
  assert.is(bare.code, 3, show(bare));
  assert.match(bare.stderr, "Usage: chjob");
  // Help asked for is not an error, however it is asked for.
  for (const args of [["--help"], ["help"], ["help", "run"], ["run", "--help"]]) {
    const help = await cli(args);
    assert.is(help.code, 0, show(help));
    assert.is(help.stderr, "", show(help));
    assert.match(help.stdout, args.includes("run") ? "--report" : "demo-data");
  }
});

test(`the demo table: ${DEMO_ROWS} rows after an embedded start, and its queries complete`, async (ctx) => {
  const r = await cli(["run", "SELECT count() FROM uk_price_paid", ...ctx.at]);
  assert.is(r.code, 0, show(r));
  const uri = must(/^result_uri\s+(\S+)$/m.exec(r.stdout)?.[1], show(r));
  const csv = (await getObject(s3Client(ctx.svc.s3Endpoint), uri)).toString("utf8");
  assert.is(csv, `"count()"\n${DEMO_ROWS}\n`);

  const readme = await cli(["run", "SELECT town, avg(price) FROM uk_price_paid GROUP BY town", ...ctx.at]);
  assert.is(readme.code, 0, show(readme));
  const walkthrough = await cli(["run", "SELECT town, avg(price) AS price FROM uk_price_paid GROUP BY town ORDER BY price DESC", ...ctx.at]);
  assert.is(walkthrough.code, 0, show(walkthrough));
  const towns = Number(/^rows\s+([\d,]+)$/m.exec(walkthrough.stdout)?.[1]?.replace(/,/g, ""));
  assert.ok(towns > 20, show(walkthrough));

  for (const q of demoQueries) {
    const d = await cli(["run", "--report", "demo", "--query", q.id, q.sql, ...ctx.at]);
    assert.is(d.code, 0, `${q.id}: ${show(d)}`);
  }
});

test("the README's `npx chjob run` commands run as written", async (ctx) => {
  const commands = readmeRunCommands();
  const readme = readFileSync(join(dirname(fileURLToPath(import.meta.url)), "../../README.md"), "utf8");
  for (const q of demoQueries) {
    assert.ok(readme.includes(q.sql), `the README shows demo query ${q.id} as in src/demo`);
    assert.ok(
      commands.some((c) => c.includes(q.sql)),
      `a README command runs ${q.id}`,
    );
  }
  assert.ok(commands.some((c) => c.at(-1) === "SELECT town, avg(price) AS price FROM uk_price_paid GROUP BY town ORDER BY price DESC"));
  assert.ok(commands.length >= 6, JSON.stringify(commands));
  for (const args of commands) {
    const slow = args.some((a) => a.includes("numbers(30000000000)"));
    let sent = false;
    const r = await cli([...args, ...ctx.at], {
      // The slow one (the walkthrough's watch step) is cancelled once it runs.
      onStdout: (child, stdout) => {
        if (slow && !sent && /: RUNNING/.test(stdout)) {
          sent = true;
          child.kill("SIGINT");
        }
      },
    });
    assert.is(r.code, slow ? 2 : 0, `${JSON.stringify(args)}: ${show(r)}`);
  }
});

test("--tls/--ca and --token against a service with TLS and a token", async () => {
  const dir = mkdtempSync(join(tmpdir(), "chjob-cli-tls-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`this test needs openssl to make a certificate: ${(err as Error).message}`);
  }
  const svc = await startService({
    env: { CHJOB_TLS_CERT: join(dir, "cert.pem"), CHJOB_TLS_KEY: join(dir, "key.pem"), CHJOB_AUTH_TOKEN: "cli-test-token" },
  });
  try {
    const at = ["--address", svc.grpcAddress];
    const ok = await cli(["run", "SELECT 1", "--ca", join(dir, "cert.pem"), "--token", "cli-test-token", ...at]);
    assert.is(ok.code, 0, show(ok));

    const fromEnv = await cli(["list", "--ca", join(dir, "cert.pem"), ...at], { env: { CHJOB_AUTH_TOKEN: "cli-test-token" } });
    assert.is(fromEnv.code, 0, show(fromEnv));

    const noToken = await cli(["list", "--ca", join(dir, "cert.pem"), ...at]);
    assert.is(noToken.code, 3, show(noToken));
    assert.match(noToken.stderr, /^chjob: UNAUTHENTICATED: .*\(pass --token or set CHJOB_AUTH_TOKEN\)\n$/, show(noToken));

    const plain = await cli(["list", "--token", "cli-test-token", ...at]);
    assert.is(plain.code, 3, show(plain));
    assert.is(plain.stderr.trimEnd().split("\n").length, 1, show(plain));
    assert.match(plain.stderr, `cannot reach the chjob service at ${svc.grpcAddress}`);
    assert.match(plain.stderr, "--tls");

    // health needs no token; over TLS with --ca, or unverified when this machine's configuration
    // has CHJOB_TLS_CERT (the container's HEALTHCHECK); in plain text it gets no answer.
    for (const [args, env] of [
      [["--ca", join(dir, "cert.pem")], {}],
      [[], { CHJOB_TLS_CERT: join(dir, "cert.pem") }],
    ] as Array<[string[], Record<string, string>]>) {
      const health = await cli(["health", ...args, ...at], { env });
      assert.is(health.code, 0, show(health));
      assert.is(health.stdout, "SERVING\n");
    }
    const plainHealth = await cli(["health", ...at]);
    assert.is(plainHealth.code, 1, show(plainHealth));

    writeFileSync(join(dir, "other.pem"), "not a certificate");
    const missingCa = await cli(["list", "--ca", join(dir, "nope.pem"), ...at]);
    assert.is(missingCa.code, 3);
    assert.match(missingCa.stderr, /^chjob: --ca: cannot read .*nope\.pem: ENOENT\n$/);
  } finally {
    assert.is(await svc.stop(), 0);
    svc.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("demo-data creates the table in the embedded engine; a service started there keeps it", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "chjob-cli-demo-"));
  try {
    const r = await cli(["demo-data", "--rows", "1234"], { cwd });
    assert.is(r.code, 0, show(r));
    assert.match(r.stdout, /^uk_price_paid: 1,234 rows in \d+\.\d+s$/m);

    const svc = await startService({ cwd, env: { CHJOB_DEMO_ROWS: "1234" } });
    try {
      assert.ok(svc.logs.some((l) => l.includes('"msg":"demo table present"')), "the service found the table");
      // While the service holds the data directory, demo-data says what to do.
      const busy = await cli(["demo-data", "--rows", "10"], { cwd });
      assert.is(busy.code, 1, show(busy));
      assert.match(busy.stderr, "Is `chjob serve` running on this data directory?");

      const count = await cli(["run", "--json", "SELECT count() AS n FROM uk_price_paid", "--address", svc.grpcAddress]);
      assert.is(count.code, 0, show(count));
      const done = JSON.parse(count.stdout.trimEnd().split("\n").at(-1)!) as { resultUri: string };
      assert.is((await getObject(s3Client(svc.s3Endpoint), done.resultUri)).toString(), "\"n\"\n1234\n");
    } finally {
      assert.is(await svc.stop(), 0);
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test.run();
