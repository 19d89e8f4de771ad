// Every bad input gets the right code and a message naming the field; nothing
// lands in S3 outside <output>/<report_id>/<query_id>/; the service keeps
// completing normal jobs.
import { status } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import type { JobClient } from "../src/client.js";
import { listKeys, s3Client } from "./support/s3.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

const MAX_QUERY_BYTES = 4096;
const test = suite<{ svc: ServiceProcess; client: JobClient }>("hardening");

test.before(async (ctx) => {
  ctx.svc = await startService({ env: { CHJOB_MAX_QUERY_BYTES: String(MAX_QUERY_BYTES) } });
  ctx.client = ctx.svc.client();
});

test.after(async (ctx) => {
  assert.is(await ctx.svc.stop(), 0);
  ctx.svc.cleanup();
});

interface Rejection {
  code: number;
  details: string;
}
const rejection = (p: Promise<unknown>): Promise<Rejection | undefined> => p.then(() => undefined, (e: Rejection) => e);

const BAD_IDS: Array<[string, string]> = [
  ["empty", ""],
  ["129 characters", "a".repeat(129)],
  ["slash", "a/b"],
  ["dot-dot", ".."],
  ["dot", "."],
  ["single quote", "a'b"],
  ["double quote", 'a"b'],
  ["space", "a b"],
  ["backslash", "a\\b"],
  ["non-ASCII", "café"],
  ["NUL", "a\0b"],
  ["newline", "a\nb"],
];

test("report_id and query_id: every bad value is INVALID_ARGUMENT naming the field", async ({ client }) => {
  for (const field of ["report_id", "query_id"] as const) {
    for (const [name, value] of BAD_IDS) {
      const req = { reportId: "ok", queryId: "ok", queryText: "SELECT 1", ...(field === "report_id" ? { reportId: value } : { queryId: value }) };
      const err = await rejection(client.createJob(req));
      assert.ok(err, `${field} ${name}: accepted`);
      assert.is(err!.code, status.INVALID_ARGUMENT, `${field} ${name}`);
      assert.ok(err!.details.startsWith(`${field}: `), `${field} ${name}: ${err!.details}`);
    }
  }
});

const BAD_QUERIES: Array<[string, string, RegExp]> = [
  ["empty", "", /is empty/],
  ["blanks only", " \n\t ", /is empty/],
  ["only semicolons", " ; ;; ", /no statement/],
  ["only a comment", "-- nothing\n", /no statement/],
  ["over CHJOB_MAX_QUERY_BYTES", `SELECT '${"x".repeat(MAX_QUERY_BYTES)}'`, /CHJOB_MAX_QUERY_BYTES/],
  ["several statements", "SELECT 1; DROP TABLE IF EXISTS t", /2 statements/],
  ["a statement after a comment", "SELECT 1; /* hi */ SELECT 2;", /2 statements/],
  ["closing the s3() arguments", "') SELECT 1 --", /unterminated string literal/],
  ["closing the s3() arguments, balanced", "'x', 'y') SELECT 1", /must be a SELECT query/],
  ["its own INSERT", "INSERT INTO FUNCTION file('/tmp/x.csv') SELECT 1", /must be a SELECT query.*INSERT/],
  ["its own FORMAT", "SELECT 1 FORMAT JSON", /must not set FORMAT/],
  ["INTO OUTFILE", "SELECT 1 INTO OUTFILE '/tmp/chjob-evil.csv'", /INTO OUTFILE/],
  ["a DDL statement", "DROP TABLE uk_price_paid", /must be a SELECT query/],
  ["an unterminated comment", "SELECT 1 /* never closed", /unterminated comment/],
  ["NUL", "SELECT 1\0", /NUL/],
];

test("query_text: every bad value is INVALID_ARGUMENT naming the field and the fix", async ({ client }) => {
  for (const [name, text, message] of BAD_QUERIES) {
    const err = await rejection(client.createJob({ reportId: "bad", queryId: "query", queryText: text }));
    assert.ok(err, `${name}: accepted`);
    assert.is(err!.code, status.INVALID_ARGUMENT, name);
    assert.match(err!.details, /^query_text: /, name);
    assert.match(err!.details, message, `${name}: ${err!.details}`);
  }
});

test("accepted odd queries stay inside their job: own SETTINGS, strings with quotes, comments, trailing ;", async ({ client }) => {
  const texts = [
    "SELECT 1 AS x SETTINGS max_threads = 1",
    "SELECT ''') , (' AS tricky, '\\\\' AS backslash",
    "/* leading */ SELECT 1 -- trailing",
    "SELECT 'a;b' AS semicolon_in_string;\n;",
    "WITH 1 AS x SELECT x",
    "(SELECT 1)",
    "SELECT format('{}', 'x') AS format",
  ];
  for (const [i, text] of texts.entries()) {
    const job = await client.createJob({ reportId: "odd", queryId: `q${i}`, queryText: text });
    const end = (await collect(client.watchJob(job.id).states)).at(-1)!;
    assert.is(end.status, JobStatus.DONE, `${text}: ${end.error}`);
    assert.is(end.exportUri, `s3://dekart-dev-local/files/odd/q${i}/result.csv`);
  }
});

test("job ids: empty and malformed are INVALID_ARGUMENT, unknown is NOT_FOUND, on GetJob, WatchJob and CancelJob", async ({ client }) => {
  const watch = (id: string) =>
    (async () => {
      for await (const _ of client.watchJob(id).states) return;
    })();
  const methods: Array<[string, (id: string) => Promise<unknown>]> = [
    ["GetJob", (id) => client.getJob(id)],
    ["CancelJob", (id) => client.cancelJob(id)],
    ["WatchJob", watch],
  ];
  for (const [method, call] of methods) {
    for (const [id, code] of [
      ["", status.INVALID_ARGUMENT],
      ["not-a-uuid", status.INVALID_ARGUMENT],
      ["../../etc/passwd", status.INVALID_ARGUMENT],
      ["00000000-0000-4000-8000-00000000000G", status.INVALID_ARGUMENT],
      ["00000000-0000-4000-8000-000000000000", status.NOT_FOUND],
    ] as const) {
      const err = await rejection(call(id));
      assert.ok(err, `${method}(${JSON.stringify(id)}) succeeded`);
      assert.is(err!.code, code, `${method}(${JSON.stringify(id)}): ${err!.details}`);
      assert.match(err!.details, code === status.NOT_FOUND ? /no job with id/ : /^job_id: /);
    }
  }
});

test("ListJobs: page_size 0 is the default, negative is INVALID_ARGUMENT, huge is capped; forged and foreign tokens are refused", async ({ client }) => {
  assert.ok((await client.listJobs({ pageSize: 0 })).jobs.length <= 50);
  const negative = await rejection(client.listJobs({ pageSize: -5 }));
  assert.is(negative?.code, status.INVALID_ARGUMENT);
  assert.match(negative!.details, /^page_size: /);
  assert.ok((await client.listJobs({ pageSize: 2_000_000_000 })).jobs.length <= 1000);
  const first = await client.listJobs({ pageSize: 1 });
  assert.ok(first.nextPageToken, "a next page exists");
  const [payload, sig] = first.nextPageToken.split(".");
  const forgedPayload = Buffer.from(JSON.stringify({ r: "", p: "999999" })).toString("base64url");
  for (const token of [`${forgedPayload}.${sig}`, `${payload}.${"A".repeat(sig!.length)}`, "garbage", `${payload}`, `${first.nextPageToken}.x`]) {
    const err = await rejection(client.listJobs({ pageToken: token }));
    assert.is(err?.code, status.INVALID_ARGUMENT, token);
    assert.match(err!.details, /^page_token: /);
  }
  const foreign = await rejection(client.listJobs({ reportId: "odd", pageToken: first.nextPageToken }));
  assert.is(foreign?.code, status.INVALID_ARGUMENT);
  assert.match(foreign!.details, /another report_id/);
  const badReport = await rejection(client.listJobs({ reportId: "a/b" }));
  assert.is(badReport?.code, status.INVALID_ARGUMENT);
  assert.match(badReport!.details, /^report_id: /);
});

test("a message over the gRPC receive limit (16 MiB here) is RESOURCE_EXHAUSTED from grpc-js, and the service stays up", async ({ client }) => {
  // Below that limit a long query_text reaches CreateJob: INVALID_ARGUMENT naming the limit.
  const long = await rejection(client.createJob({ reportId: "big", queryId: "q", queryText: `SELECT '${"x".repeat(200 * 1024)}'` }));
  assert.is(long?.code, status.INVALID_ARGUMENT);
  assert.match(long!.details, new RegExp(`^query_text: is \\d+ bytes; at most ${MAX_QUERY_BYTES} are accepted \\(CHJOB_MAX_QUERY_BYTES\\)$`));
  const huge = await rejection(client.createJob({ reportId: "big", queryId: "q", queryText: `SELECT '${"x".repeat(17 * 1024 ** 2)}'` }));
  assert.is(huge?.code, status.RESOURCE_EXHAUSTED);
  assert.match(huge!.details, /larger than max/i);
  assert.ok((await client.listJobs({ pageSize: 1 })).jobs.length >= 0, "still answering");
});

test("after all that: a normal job completes, and S3 holds nothing outside the allowed paths", async ({ svc, client }) => {
  const job = await client.createJob({ reportId: "normal", queryId: "q", queryText: "SELECT 42 AS answer" });
  const end = (await collect(client.watchJob(job.id).states)).at(-1) as Job;
  assert.is(end.status, JobStatus.DONE);
  const keys = await listKeys(s3Client(svc.s3Endpoint), "dekart-dev-local");
  for (const k of keys) assert.match(k, /^(files\/(odd|normal)\/q\d?\/result\.csv|[0-9a-f-]{36}\.csv)$/);
  assert.ok(svc.logs.every((l) => !/"level":(50|60)/.test(l)), "no error lines in the log");
});

test.run();
