// Results as users want them, on the embedded pipeline (chDB + a real S3 server):
// every format and compression read back by a real reader of that format
// (ClickHouse itself, through s3()), result reuse, and per-job guardrails.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DeleteObjectCommand, HeadObjectCommand } from "@aws-sdk/client-s3";
import type { ClickHouseClient } from "@clickhouse/client";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Compression, Format, JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import { chdbClient } from "../src/clickhouse/chdb.js";
import type { JobClient } from "../src/client.js";
import { parseS3Uri, s3Client } from "./support/s3.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

interface Ctx {
  svc: ServiceProcess;
  client: JobClient;
  reader: ClickHouseClient;
  readerDir: string;
}

const test = suite<Ctx>("results");

test.before(async (ctx) => {
  ctx.svc = await startService({ env: { CHJOB_MAX_ROWS_TO_READ: "1000000", CHJOB_JOB_TIMEOUT: "30s" } });
  ctx.client = ctx.svc.client();
  ctx.readerDir = mkdtempSync(join(tmpdir(), "chjob-reader-"));
  ctx.reader = await chdbClient(ctx.readerDir);
});

test.after(async (ctx) => {
  await ctx.reader?.close();
  rmSync(ctx.readerDir, { recursive: true, force: true });
  assert.is(await ctx.svc.stop(), 0);
  ctx.svc.cleanup();
});

const QUERY = "SELECT number AS n, toString(number) AS s, number / 4 AS f, [number, 1] AS a FROM numbers(5000)";
/** What QUERY's rows add up to, as the reader computes it from the object. */
const EXPECTED = { rows: "5000", sum_n: "12497500", sum_len: "18890", sum_f: 3124375 };

async function run(client: JobClient, req: Parameters<JobClient["createJob"]>[0]): Promise<Job> {
  const job = await client.createJob(req);
  return (await collect(client.watchJob(job.id).states)).at(-1)!;
}

/** Reads an object back with ClickHouse's own reader of `format` (compression from the name). */
async function readBack(ctx: Ctx, uri: string, format: string): Promise<typeof EXPECTED> {
  const { Bucket, Key } = parseS3Uri(uri);
  const url = `${ctx.svc.s3Endpoint}/${Bucket}/${Key}`;
  const rs = await ctx.reader.query({
    query: `SELECT toString(count()) AS rows, toString(sum(toUInt64(n))) AS sum_n, toString(sum(length(toString(s)))) AS sum_len, sum(toFloat64(f)) AS sum_f
            FROM s3('${url}', 'chjob', 'chjob-local-secret', '${format}')`,
    format: "JSONEachRow",
  });
  const [row] = await rs.json<typeof EXPECTED>();
  return { ...row!, sum_f: Number(row!.sum_f) };
}

const CASES: Array<{ format: Format; compression: Compression; clickhouse: string; ext: string; type: RegExp; encoding?: string }> = [
  { format: Format.CSV_WITH_NAMES, compression: Compression.NONE, clickhouse: "CSVWithNames", ext: "csv", type: /^text\/csv/ },
  { format: Format.CSV_WITH_NAMES, compression: Compression.GZIP, clickhouse: "CSVWithNames", ext: "csv.gz", type: /^text\/csv/, encoding: "gzip" },
  { format: Format.PARQUET, compression: Compression.NONE, clickhouse: "Parquet", ext: "parquet", type: /^application\/vnd\.apache\.parquet$/ },
  { format: Format.JSON_EACH_ROW, compression: Compression.ZSTD, clickhouse: "JSONEachRow", ext: "jsonl.zst", type: /^application\/x-ndjson$/, encoding: "zstd" },
  { format: Format.ARROW, compression: Compression.NONE, clickhouse: "Arrow", ext: "arrow", type: /^application\/vnd\.apache\.arrow\.file$/ },
  { format: Format.TSV_WITH_NAMES, compression: Compression.GZIP, clickhouse: "TSVWithNames", ext: "tsv.gz", type: /^text\/tab-separated-values/, encoding: "gzip" },
];

for (const c of CASES) {
  test(`${Format[c.format]} ${Compression[c.compression]}: result.${c.ext} and <job id>.${c.ext}, its Content-Type, read back with ClickHouse`, async (ctx) => {
    const done = await run(ctx.client, { reportId: "formats", queryId: `q-${c.ext.replace(/\./g, "-")}`, queryText: QUERY, format: c.format, compression: c.compression });
    assert.is(done.status, JobStatus.DONE, done.error);
    assert.is(done.format, c.format);
    assert.is(done.compression, c.compression);
    assert.match(done.contentType, c.type);
    assert.ok(done.exportUri.endsWith(`/formats/q-${c.ext.replace(/\./g, "-")}/result.${c.ext}`), done.exportUri);
    assert.ok(done.resultUri.endsWith(`/${done.id}.${c.ext}`), done.resultUri);
    const head = await s3Client(ctx.svc.s3Endpoint).send(new HeadObjectCommand(parseS3Uri(done.resultUri)));
    assert.match(head.ContentType ?? "", c.type);
    assert.is(head.ContentEncoding, c.encoding);
    // On chDB the size comes from its counters of the export, not from a HeadObject: it must be the object's.
    assert.is(Number(done.resultSize), head.ContentLength, "result_size is the result object's size");
    assert.equal(await readBack(ctx, done.resultUri, c.clickhouse), EXPECTED);
  });
}

test("no format or compression given: CSVWithNames at result.csv and <job id>.csv, as before", async (ctx) => {
  const done = await run(ctx.client, { reportId: "formats", queryId: "default", queryText: QUERY });
  assert.is(done.format, Format.CSV_WITH_NAMES);
  assert.is(done.compression, Compression.NONE);
  assert.ok(done.exportUri.endsWith("/formats/default/result.csv"));
  assert.ok(done.resultUri.endsWith(`/${done.id}.csv`));
  assert.equal(await readBack(ctx, done.resultUri, "CSVWithNames"), EXPECTED);
});

test("PARQUET with an outer compression is INVALID_ARGUMENT saying why; nothing is stored", async (ctx) => {
  const err = (await ctx.client.createJob({ reportId: "formats", queryId: "bad", queryText: QUERY, format: Format.PARQUET, compression: Compression.GZIP }).catch((e: unknown) => e)) as ServiceError;
  assert.is(err.code, grpcStatus.INVALID_ARGUMENT);
  assert.match(err.details, /^compression: .*Parquet compresses inside the file/);
  assert.not.ok((await ctx.client.listJobs({ reportId: "formats" })).jobs.some((j) => j.queryId === "bad"));
});

test("reuse: the same query (other layout, trailing ;) within reuse_max_age copies the earlier result; another format, an old result or a deleted one runs the query", async (ctx) => {
  const first = await run(ctx.client, { reportId: "reuse", queryId: "a", queryText: "SELECT number AS n FROM numbers(10)" });
  assert.is(first.status, JobStatus.DONE);
  assert.is(first.reusedFrom, "", "no reuse unless asked");
  const hour = { seconds: 3600n, nanos: 0 };
  const again = await run(ctx.client, { reportId: "reuse", queryId: "b", queryText: "  SELECT number AS n\n   FROM numbers(10) ;  ", reuseMaxAge: hour });
  assert.is(again.status, JobStatus.DONE, again.error);
  assert.is(again.reusedFrom, first.id);
  assert.is(again.totalRows, first.totalRows);
  assert.is(again.resultSize, first.resultSize);
  assert.ok(again.resultUri.endsWith(`/${again.id}.csv`), "its own result object");
  const s3 = s3Client(ctx.svc.s3Endpoint);
  assert.is((await s3.send(new HeadObjectCommand(parseS3Uri(again.resultUri)))).ContentLength, Number(first.resultSize));

  const otherFormat = await run(ctx.client, { reportId: "reuse", queryId: "c", queryText: "SELECT number AS n FROM numbers(10)", reuseMaxAge: hour, format: Format.JSON_EACH_ROW });
  assert.is(otherFormat.reusedFrom, "", "another format is another result");
  const tooOld = await run(ctx.client, { reportId: "reuse", queryId: "d", queryText: "SELECT number AS n FROM numbers(10)", reuseMaxAge: { seconds: 0n, nanos: 1_000_000 } });
  assert.is(tooOld.reusedFrom, "", "older than reuse_max_age");

  // Every earlier CSV result of this query deleted outside the service: no reuse, no failure.
  for (const j of [first, again, tooOld]) await s3.send(new DeleteObjectCommand(parseS3Uri(j.resultUri)));
  const afterDelete = await run(ctx.client, { reportId: "reuse", queryId: "e", queryText: "SELECT number AS n FROM numbers(10)", reuseMaxAge: hour });
  assert.is(afterDelete.status, JobStatus.DONE, afterDelete.error);
  assert.is(afterDelete.reusedFrom, "");
});

test("guardrails: a request may lower the service's limits, never raise them; a job over a limit ends FAILED naming it", async (ctx) => {
  const raise = (await ctx.client.createJob({ reportId: "limits", queryId: "raise", queryText: "SELECT 1", maxRowsToRead: 2_000_000n }).catch((e: unknown) => e)) as ServiceError;
  assert.is(raise.code, grpcStatus.INVALID_ARGUMENT);
  assert.match(raise.details, /^max_rows_to_read: 2000000 is above the service's limit 1000000 \(CHJOB_MAX_ROWS_TO_READ\)/);
  const longer = (await ctx.client.createJob({ reportId: "limits", queryId: "longer", queryText: "SELECT 1", timeout: { seconds: 60n, nanos: 0 } }).catch((e: unknown) => e)) as ServiceError;
  assert.is(longer.code, grpcStatus.INVALID_ARGUMENT);
  assert.match(longer.details, /^timeout: .*CHJOB_JOB_TIMEOUT/);

  const serviceCap = await run(ctx.client, { reportId: "limits", queryId: "service", queryText: "SELECT count() FROM numbers(5000000)" });
  assert.is(serviceCap.status, JobStatus.FAILED);
  assert.match(serviceCap.error, /TOO_MANY_ROWS.*max_rows_to_read/);

  const lowered = await run(ctx.client, { reportId: "limits", queryId: "rows", queryText: "SELECT count() FROM numbers(1000)", maxRowsToRead: 10n });
  assert.is(lowered.status, JobStatus.FAILED);
  assert.match(lowered.error, /max_rows_to_read/);
  const bytes = await run(ctx.client, { reportId: "limits", queryId: "bytes", queryText: "SELECT sum(number) FROM numbers(100000)", maxBytesToRead: 1000n });
  assert.is(bytes.status, JobStatus.FAILED);
  assert.match(bytes.error, /TOO_MANY_BYTES.*max bytes: 1000/);
  const result = await run(ctx.client, { reportId: "limits", queryId: "result", queryText: "SELECT number FROM numbers(100000)", maxResultBytes: 1000n });
  assert.is(result.status, JobStatus.FAILED);
  assert.match(result.error, /max_result_bytes \(1000 bytes\)/, `${JobStatus[result.status]}: ${result.error}`);
  assert.is(result.resultUri, "");

  const started = Date.now();
  const timedOut = await run(ctx.client, { reportId: "limits", queryId: "timeout", queryText: "SELECT sleepEachRow(0.1) FROM numbers(100) SETTINGS max_block_size = 10", timeout: { seconds: 1n, nanos: 0 } });
  assert.is(timedOut.status, JobStatus.FAILED);
  assert.match(timedOut.error, /its timeout \(1s\)/);
  assert.ok(Date.now() - started < 10_000);
  const fine = await run(ctx.client, { reportId: "limits", queryId: "fine", queryText: "SELECT count() FROM numbers(1000)", maxRowsToRead: 5000n });
  assert.is(fine.status, JobStatus.DONE, fine.error);
});

test.run();
