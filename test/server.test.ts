// The service as a user starts it: embedded mode on free ports, reflection,
// health, request validation, a bad configuration, and SIGTERM.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { HealthCheckResponse_ServingStatus as Serving } from "../gen/grpc/health/v1/health_pb.js";
import { listKeys, s3Client } from "./support/s3.js";
import { cleanEnv, MAIN, QUIET_ENV, startService, type ServiceProcess } from "./support/service.js";

const run = promisify(execFile);
const test = suite<{ svc: ServiceProcess }>("server");

test.before(async (ctx) => {
  ctx.svc = await startService();
});

test.after(async (ctx) => {
  await ctx.svc.stop();
  ctx.svc.cleanup();
});

test("reflection lists the five methods and health, with no proto files (buf curl)", async ({ svc }) => {
  const { stdout } = await run("npx", ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", `http://${svc.grpcAddress}`]);
  const methods = stdout.trim().split("\n").sort();
  for (const m of ["CancelJob", "CreateJob", "GetJob", "ListJobs", "WatchJob"]) assert.ok(methods.includes(`chjob.v1.JobService/${m}`), m);
  assert.ok(methods.includes("grpc.health.v1.Health/Check"));
});

test("buf curl calls a method by reflection", async ({ svc }) => {
  const { stdout } = await run("npx", [
    "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge",
    "-d", '{"report_id":"reflect","query_id":"q","query_text":"SELECT 1 AS one"}',
    `http://${svc.grpcAddress}/chjob.v1.JobService/CreateJob`,
  ]);
  const job = JSON.parse(stdout).job;
  assert.is(job.reportId, "reflect");
  assert.match(job.status, /JOB_STATUS_(PENDING|RUNNING)/);
});

test("Health/Check answers SERVING for the server and for JobService", async ({ svc }) => {
  const client = svc.client();
  assert.is(await client.healthCheck(""), Serving.SERVING);
  assert.is(await client.healthCheck("chjob.v1.JobService"), Serving.SERVING);
  const err = await client.healthCheck("no.such.Service").catch((e) => e);
  assert.is(err.code, status.NOT_FOUND);
});

test("invalid requests get INVALID_ARGUMENT naming the field", async ({ svc }) => {
  const client = svc.client();
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ["report_id", () => client.createJob({ reportId: "", queryId: "q", queryText: "SELECT 1" }), /^report_id: /],
    ["query_id", () => client.createJob({ reportId: "r", queryId: "a/b", queryText: "SELECT 1" }), /^query_id: .*"\/"/],
    ["query_text", () => client.createJob({ reportId: "r", queryId: "q", queryText: "  " }), /^query_text: is empty/],
    ["job_id get", () => client.getJob("nope"), /^job_id: /],
    ["job_id cancel", () => client.cancelJob(""), /^job_id: is empty/],
    ["page_size", () => client.listJobs({ pageSize: -1 }), /^page_size: /],
    ["page_token", () => client.listJobs({ pageToken: "forged" }), /^page_token: /],
  ];
  for (const [name, call, message] of cases) {
    const err = (await call().then(() => undefined, (e) => e)) as { code: number; details: string } | undefined;
    assert.ok(err, `${name}: expected an error`);
    assert.is(err!.code, status.INVALID_ARGUMENT, name);
    assert.match(err!.details, message, name);
  }
  const watch = svc.client().watchJob("not-a-uuid");
  const err = await (async () => {
    try {
      for await (const _ of watch.states) return undefined;
    } catch (e) {
      return e as { code: number; details: string };
    }
  })();
  assert.is(err?.code, status.INVALID_ARGUMENT);
  assert.match(err!.details, /^job_id: /);
});

test("a query_text over CHJOB_MAX_QUERY_BYTES is INVALID_ARGUMENT naming the field and the limit, whatever its size", async ({ svc }) => {
  const client = svc.client();
  const MiB = 1024 ** 2;
  for (const size of [MiB + 1, 2 * MiB, 8 * MiB]) {
    const queryText = `SELECT '${"x".repeat(size - 9)}'`; // exactly `size` bytes
    const err = (await client.createJob({ reportId: "big", queryId: "q", queryText }).then(() => undefined, (e) => e)) as { code: number; details: string } | undefined;
    assert.is(err?.code, status.INVALID_ARGUMENT, `${size} bytes`);
    assert.is(err!.details, `query_text: is ${size} bytes; at most 1048576 are accepted (CHJOB_MAX_QUERY_BYTES)`);
  }
  assert.is(await client.healthCheck(""), Serving.SERVING, "still serving");
});

test("an unknown job is NOT_FOUND", async ({ svc }) => {
  const err = await svc.client().getJob("00000000-0000-4000-8000-000000000000").catch((e) => e);
  assert.is(err.code, status.NOT_FOUND);
});

test("SIGTERM: health goes NOT_SERVING, the process exits 0", async () => {
  const svc = await startService();
  const code = await svc.stop();
  assert.is(code, 0);
  assert.ok(svc.logs.some((l) => l.includes('"msg":"stopped"')));
  svc.cleanup();
});

test("a bad configuration exits non-zero before listening, listing every problem without secrets", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "chjob-badconf-"));
  try {
    const child = spawn(process.execPath, [MAIN, "serve"], {
      cwd,
      env: {
        ...cleanEnv(),
        ...QUIET_ENV,
        CHJOB_MAX_CONCURRENT_JOBS: "8x",
        CHJOB_JOB_TIMEOUT: "soon",
        AWS_ENDPOINT: "http://127.0.0.1:1",
        AWS_SECRET_ACCESS_KEY: "s3cr3t-value-never-printed",
        CHJOB_LOG_LEVEL: "loud",
      },
    });
    let stderr = "";
    let stdout = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.stdout.on("data", (d) => (stdout += d));
    const code = await new Promise((r) => child.on("exit", r));
    assert.is.not(code, 0);
    for (const v of ["CHJOB_MAX_CONCURRENT_JOBS", "CHJOB_JOB_TIMEOUT", "AWS_ACCESS_KEY_ID", "CHJOB_LOG_LEVEL"]) assert.ok(stderr.includes(v), `${v} in:\n${stderr}`);
    assert.not.ok((stderr + stdout).includes("s3cr3t-value-never-printed"));
    assert.not.ok(stdout.includes("chjob serving"));
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("at start ClickHouse writes a probe object to the export location and says so; nothing is left of it", async ({ svc }) => {
  assert.ok(svc.logs.some((l) => l.includes('"msg":"ClickHouse writes to the export location"')));
  const keys = await listKeys(s3Client(svc.s3Endpoint), "dekart-dev-local");
  assert.not.ok(keys.some((k) => k.includes(".chjob-check")), keys.join(", "));
});

test("when ClickHouse cannot reach S3 (DEKART_CLICKHOUSE_S3_ENDPOINT wrong), the start warns naming the fix", async () => {
  const svc = await startService({ env: { DEKART_CLICKHOUSE_S3_ENDPOINT: "http://127.0.0.1:1", CHJOB_JOB_TIMEOUT: "3s" }, timeoutMs: 40_000 });
  try {
    const warning = svc.logs.find((l) => l.includes("ClickHouse did not manage to write") || l.includes("ClickHouse cannot write"));
    assert.ok(warning, svc.logs.join("\n"));
    assert.match(warning!, /http:\/\/127\.0\.0\.1:1\/dekart-dev-local\/files\/\.chjob-check\//);
    assert.match(warning!, /DEKART_CLICKHOUSE_S3_ENDPOINT/);
    assert.is(await svc.client().healthCheck(""), Serving.SERVING, "jobs are still served");
  } finally {
    assert.is(await svc.stop(), 0);
    svc.cleanup();
  }
});

test("a port in use is a clear error naming the variable", async ({ svc }) => {
  const cwd = mkdtempSync(join(tmpdir(), "chjob-port-"));
  try {
    const child = spawn(process.execPath, [MAIN, "serve"], {
      cwd,
      env: { ...cleanEnv(), ...QUIET_ENV, CHJOB_DEMO_ROWS: "0", CHJOB_EMBEDDED_S3_ADDRESS: "127.0.0.1:0", CHJOB_GRPC_ADDRESS: svc.grpcAddress },
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise((r) => child.on("exit", r));
    assert.is(code, 2, "a configuration problem");
    assert.match(stderr, /CHJOB_GRPC_ADDRESS: cannot listen on 127\.0\.0\.1:\d+: the port is in use/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test.run();
