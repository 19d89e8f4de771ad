// result_url and `chjob fetch` end to end on the embedded pipeline (chDB + s3rver): a DONE
// job's presigned GET fetched with no credentials gives the result's exact bytes, on every call
// that returns the job; it expires (s3rver enforces X-Amz-Expires); CHJOB_PUBLIC_S3_ENDPOINT
// sets its origin; `chjob fetch` downloads through it.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Compression, Format, JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import type { JobClient } from "../src/client.js";
import { cli, show } from "./support/cli.js";
import { getObject, s3Client } from "./support/s3.js";
import { cleanEnv, collect, MAIN, QUIET_ENV, startService, type ServiceProcess } from "./support/service.js";

interface Ctx {
  svc: ServiceProcess;
  client: JobClient;
  /** The embedded S3 server's port; clients are told to reach it as localhost. */
  port: number;
  at: string[];
  cwd: string;
}

const test = suite<Ctx>("presign");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

test.before(async (ctx) => {
  ctx.port = await freePort();
  ctx.svc = await startService({
    env: {
      CHJOB_PRESIGN_TTL: "15m",
      CHJOB_EMBEDDED_S3_ADDRESS: `127.0.0.1:${ctx.port}`,
      // Another name for the same server: the URL's origin must follow it, and it still works.
      CHJOB_PUBLIC_S3_ENDPOINT: `localhost:${ctx.port}`,
      AWS_INSECURE: "true",
    },
  });
  ctx.client = ctx.svc.client();
  ctx.at = ["--address", ctx.svc.grpcAddress];
  ctx.cwd = mkdtempSync(join(tmpdir(), "chjob-fetch-"));
});

test.after(async (ctx) => {
  rmSync(ctx.cwd, { recursive: true, force: true });
  assert.is(await ctx.svc.stop(), 0);
  ctx.svc.cleanup();
});

const QUERY = "SELECT number AS n, toString(number) AS s FROM numbers(20000)";
const LONG_QUERY = "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)";

async function run(client: JobClient, req: Parameters<JobClient["createJob"]>[0]): Promise<Job> {
  const job = await client.createJob(req);
  return (await collect(client.watchJob(job.id).states)).at(-1)!;
}

/** A plain GET, as a browser or a client in another language would do it: no credentials. */
async function plainGet(url: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get("content-type"), body: Buffer.from(await res.arrayBuffer()) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("a DONE job's result_url: the origin clients reach, valid CHJOB_PRESIGN_TTL, no credentials, the exact bytes", async (ctx) => {
  const created = await ctx.client.createJob({ reportId: "presign", queryId: "csv", queryText: QUERY, requestId: "presign-csv-1" });
  assert.is(created.resultUrl, "", "no URL before DONE");
  // Two watchers of one job: the DONE message is signed once for both.
  const [a, b] = await Promise.all([collect(ctx.client.watchJob(created.id).states), collect(ctx.client.watchJob(created.id).states)]);
  const done = a.at(-1)!;
  assert.is(done.status, JobStatus.DONE, done.error);
  assert.ok(a.slice(0, -1).every((s) => s.resultUrl === ""), "only the DONE state carries a URL");
  assert.is(b.at(-1)!.resultUrl, done.resultUrl, "one signature per state for all its watchers");

  const url = new URL(done.resultUrl);
  assert.is(url.origin, `http://localhost:${ctx.port}`, "CHJOB_PUBLIC_S3_ENDPOINT, normalised (AWS_INSECURE: http)");
  assert.is(url.pathname, `/dekart-dev-local/${done.id}.csv`);
  assert.is(url.searchParams.get("X-Amz-Expires"), "900");
  assert.is(url.searchParams.get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
  assert.not.ok(done.resultUrl.includes("chjob-local-secret"), "the secret is not in the URL");

  const got = await plainGet(done.resultUrl);
  assert.is(got.status, 200, got.body.toString());
  assert.match(got.type ?? "", /^text\/csv/);
  const stored = await getObject(s3Client(ctx.svc.s3Endpoint), done.resultUri);
  assert.is(got.body.length, Number(done.resultSize));
  assert.ok(got.body.equals(stored), "the exact bytes of the result object");
  assert.ok(got.body.toString().startsWith('"n","s"\n0,"0"\n'));

  // Later calls sign anew (X-Amz-Date counts seconds): GetJob, WatchJob of the ended job,
  // CreateJob with the same request_id, CancelJob of the DONE job, ListJobs.
  await sleep(1100);
  const later = [
    await ctx.client.getJob(done.id),
    (await collect(ctx.client.watchJob(done.id).states)).at(-1)!,
    await ctx.client.createJob({ reportId: "presign", queryId: "csv", queryText: QUERY, requestId: "presign-csv-1" }),
    await ctx.client.cancelJob(done.id),
    (await ctx.client.listJobs({ reportId: "presign" })).jobs.find((j) => j.id === done.id)!,
  ];
  for (const [i, job] of later.entries()) {
    assert.is(job.status, JobStatus.DONE, `call ${i}`);
    assert.ok(job.resultUrl !== "" && job.resultUrl !== done.resultUrl, `call ${i}: a fresh URL`);
    assert.ok(new URL(job.resultUrl).searchParams.get("X-Amz-Date")! > url.searchParams.get("X-Amz-Date")!, `call ${i}: signed later`);
  }
  const again = await plainGet(later[0]!.resultUrl);
  assert.is(again.status, 200);
  assert.ok(again.body.equals(stored));
});

test("jobs that are not DONE carry no result_url, in ListJobs and CreateJob alike", async (ctx) => {
  const running = await ctx.client.createJob({ reportId: "presign", queryId: "long", queryText: LONG_QUERY });
  assert.is(running.resultUrl, "");
  try {
    const listed = (await ctx.client.listJobs({ reportId: "presign" })).jobs;
    assert.is(listed.find((j) => j.id === running.id)!.resultUrl, "");
    assert.ok(listed.filter((j) => j.status === JobStatus.DONE).every((j) => j.resultUrl !== ""));
  } finally {
    const cancelled = await ctx.client.cancelJob(running.id);
    assert.is(cancelled.resultUrl, "");
  }
  const failed = await run(ctx.client, { reportId: "presign", queryId: "bad", queryText: "SELECT no_such_column" });
  assert.is(failed.status, JobStatus.FAILED);
  assert.is(failed.resultUrl, "");
});

test("Parquet through result_url: the file as stored, its Content-Type", async (ctx) => {
  const done = await run(ctx.client, { reportId: "presign", queryId: "parquet", queryText: QUERY, format: Format.PARQUET });
  assert.is(done.status, JobStatus.DONE, done.error);
  const got = await plainGet(done.resultUrl);
  assert.is(got.status, 200);
  assert.is(got.type, "application/vnd.apache.parquet");
  assert.is(got.body.subarray(0, 4).toString(), "PAR1");
  assert.ok(got.body.equals(await getObject(s3Client(ctx.svc.s3Endpoint), done.resultUri)));
});

test("chjob fetch: <job id>.<ext> here, the exact bytes, no progress when piped; refuses to overwrite without --force", async (ctx) => {
  const done = await run(ctx.client, { reportId: "presign", queryId: "fetch", queryText: QUERY });
  const stored = await getObject(s3Client(ctx.svc.s3Endpoint), done.resultUri);
  const r = await cli(["fetch", done.id, ...ctx.at], { cwd: ctx.cwd });
  assert.is(r.code, 0, show(r));
  assert.is(r.stdout, `job ${done.id}: wrote ${done.id}.csv (${(stored.length / 1024).toFixed(1)} KiB, ${stored.length.toLocaleString("en-US")} bytes)\n`);
  assert.is(r.stderr, "", "no progress line when stderr is not a terminal");
  assert.ok(readFileSync(join(ctx.cwd, `${done.id}.csv`)).equals(stored));

  writeFileSync(join(ctx.cwd, `${done.id}.csv`), "kept");
  const refused = await cli(["fetch", done.id, ...ctx.at], { cwd: ctx.cwd });
  assert.is(refused.code, 3, show(refused));
  assert.is(refused.stderr, `chjob: ${done.id}.csv exists; pass --force to overwrite it, or -o to write elsewhere\n`);
  assert.is(readFileSync(join(ctx.cwd, `${done.id}.csv`), "utf8"), "kept");
  const forced = await cli(["fetch", "--force", done.id, ...ctx.at], { cwd: ctx.cwd });
  assert.is(forced.code, 0, show(forced));
  assert.ok(readFileSync(join(ctx.cwd, `${done.id}.csv`)).equals(stored));

  const toStdout = await cli(["fetch", done.id, "-o", "-", ...ctx.at], { cwd: ctx.cwd });
  assert.is(toStdout.code, 0, show(toStdout));
  assert.ok(toStdout.stdoutBytes.equals(stored), "-o - writes the bytes to stdout, and nothing else");
  assert.equal(readdirSync(ctx.cwd).filter((f) => f.endsWith(".part")), [], "no partial file left");
});

test("chjob fetch -o: a compressed result stays as stored (gzip bytes), wherever -o puts it", async (ctx) => {
  const done = await run(ctx.client, { reportId: "presign", queryId: "gzip", queryText: QUERY, compression: Compression.GZIP });
  assert.ok(done.resultUri.endsWith(".csv.gz"));
  const stored = await getObject(s3Client(ctx.svc.s3Endpoint), done.resultUri);
  const out = join(ctx.cwd, "sub-result.csv.gz");
  const r = await cli(["fetch", done.id, "-o", out, ...ctx.at]);
  assert.is(r.code, 0, show(r));
  const got = readFileSync(out);
  assert.is(got[0], 0x1f, "gzip magic");
  assert.is(got[1], 0x8b);
  assert.ok(got.equals(stored));
  assert.match(r.stdout, new RegExp(`^job ${done.id}: wrote \\S*sub-result\\.csv\\.gz \\(`), "the path as given, relative to the current directory");
});

test("chjob fetch of a job without a result: FAILED exits 1, still running exits 3; nothing written", async (ctx) => {
  const failed = await run(ctx.client, { reportId: "presign", queryId: "fails", queryText: "SELECT throwIf(1, 'no result here')" });
  const r = await cli(["fetch", failed.id, ...ctx.at], { cwd: ctx.cwd });
  assert.is(r.code, 1, show(r));
  assert.match(r.stderr, new RegExp(`^chjob: job ${failed.id} failed, so it has no result: .*no result here`));
  const running = await ctx.client.createJob({ reportId: "presign", queryId: "long2", queryText: LONG_QUERY });
  try {
    const early = await cli(["fetch", running.id, ...ctx.at], { cwd: ctx.cwd });
    assert.is(early.code, 3, show(early));
    assert.match(early.stderr, new RegExp(`^chjob: job ${running.id} is (PENDING|RUNNING): its result is not there yet`));
  } finally {
    await ctx.client.cancelJob(running.id);
  }
  assert.not.ok(readdirSync(ctx.cwd).some((f) => f.startsWith(failed.id) || f.startsWith(running.id)));
  const unknown = await cli(["fetch", "00000000-0000-4000-8000-000000000000", ...ctx.at], { cwd: ctx.cwd });
  assert.is(unknown.code, 3, show(unknown));
  assert.match(unknown.stderr, /^chjob: NOT_FOUND: /);
});

test("chjob fetch on a terminal draws a progress line (on stderr) and clears it", async (ctx) => {
  let hasScript = true;
  try {
    execFileSync("script", ["--version"], { stdio: "ignore" });
  } catch {
    hasScript = false;
  }
  if (!hasScript) {
    console.log("  (skipped the terminal case: no `script` command from util-linux to make a pseudo-terminal)");
    return;
  }
  const done = await run(ctx.client, { reportId: "presign", queryId: "big", queryText: "SELECT number, toString(number) FROM numbers(2000000)" });
  const out = join(ctx.cwd, "big.csv");
  // `script` runs the command on a pseudo-terminal and copies what it shows.
  const command = [process.execPath, MAIN, "fetch", done.id, "-o", out, ...ctx.at].join(" ");
  const child = spawn("script", ["-qec", command, "/dev/null"], { env: { ...cleanEnv(), ...QUIET_ENV }, stdio: ["ignore", "pipe", "pipe"] });
  let shown = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (shown += d));
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  assert.is(code, 0, shown);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the terminal's line-clearing code
  assert.match(shown, /\r\x1b\[2K⠙ fetching {2}\d+\.\ds {2}[█░]{20} \d+%/, JSON.stringify(shown.slice(0, 300)));
  // biome-ignore lint/suspicious/noControlCharactersInRegex: as above
  assert.match(shown, /\r\x1b\[2Kjob \S+: wrote \S*big\.csv \(/, "the progress line cleared before the closing line");
  assert.is(readFileSync(out).length, Number(done.resultSize));
});

test("CHJOB_PRESIGN_TTL=1s: the URL names the service's own S3 endpoint and is refused (403) once it expired", async () => {
  const svc = await startService({ env: { CHJOB_PRESIGN_TTL: "1s" } });
  try {
    const client = svc.client();
    const done = await run(client, { reportId: "presign", queryId: "short", queryText: "SELECT 1" });
    assert.is(done.status, JobStatus.DONE, done.error);
    const url = new URL(done.resultUrl);
    assert.is(url.origin, svc.s3Endpoint, "no CHJOB_PUBLIC_S3_ENDPOINT: the embedded S3 server's endpoint");
    assert.is(url.searchParams.get("X-Amz-Expires"), "1");
    await sleep(2000);
    const late = await plainGet(done.resultUrl);
    assert.is(late.status, 403, late.body.toString());
    assert.match(late.body.toString(), /<Code>AccessDenied<\/Code>.*Request has expired/s);
    // A fresh one works again (signed again if signing fell at the very end of a second: X-Amz-Date counts whole seconds).
    let fresh = await plainGet((await client.getJob(done.id)).resultUrl);
    if (fresh.status === 403) fresh = await plainGet((await client.getJob(done.id)).resultUrl);
    assert.is(fresh.status, 200, fresh.body.toString());
  } finally {
    assert.is(await svc.stop(), 0);
    svc.cleanup();
  }
});

test.run();
