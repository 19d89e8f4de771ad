// 9. ListJobs as the store grows: 10,000, 100,000 and 1,000,000 finished jobs on
// PostgreSQL, 10,000 and 100,000 on the embedded PGlite store, made with SQL
// (bench/seed-jobs.ts: generate_series, about 100 jobs per report). One real `chjob
// serve` answers; the bench times ListJobs as a client sees it (gRPC round trip), one
// call after another, for four shapes: the first page (default size 50), the first page
// of 100, a report's first page (report_id filter), and the page 20 pages deep (its
// page_token). The floor column is the same statement's shape (WHERE, ORDER BY seq DESC,
// LIMIT) run directly on the database from the bench (SELECT *), and the plan of each
// shape (EXPLAIN ANALYZE) is printed: each should be an index scan reading one page's rows.
//
// PostgreSQL: one schema grows 10k → 100k → 1M (VACUUM ANALYZE after each step, as
// autovacuum would), with the service running. PGlite: the service is stopped while its
// directory grows (one process at a time may open it), then started again; no ANALYZE
// (PGlite runs no autovacuum: a real directory has none either).
import { performance } from "node:perf_hooks";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobClient } from "../../src/client.js";
import { openPGlite } from "../../src/store/pglite.js";
import type { SqlRunner } from "../../src/store/sql.js";
import { seedJobStore } from "../../test/support/pglite-template.js";
import { benchDatabaseUrl } from "../replica-set.js";
import { explain, listQuery, seedFinishedJobs } from "../seed-jobs.js";
import { startBenchService, type BenchService } from "../service.js";
import { median, percentile } from "../stats.js";
import { BenchDatabase } from "../store-stats.js";
import { fmt, type BenchContext, type Row, type Workload } from "../workload.js";

const TITLE = "ListJobs latency at 10k, 100k, 1M stored jobs (PostgreSQL) and 10k, 100k (PGlite): first page, page of 100, a report's page, 20 pages deep";
const PG_SIZES = [10_000, 100_000, 1_000_000];
const PGLITE_SIZES = [10_000, 100_000];
const CALLS = 200;
const DEEP_PAGES = 20;
const REPORT = "r7";

interface Shape {
  name: string;
  req: Parameters<JobClient["listJobs"]>[0];
  sql: (schema: string, deepSeq: string) => string;
}

const SHAPES: Shape[] = [
  { name: "first page (50)", req: {}, sql: (s) => listQuery(s, { limit: 50 }) },
  { name: "first page (100)", req: { pageSize: 100 }, sql: (s) => listQuery(s, { limit: 100 }) },
  { name: `report's first page`, req: { reportId: REPORT }, sql: (s) => listQuery(s, { limit: 50, reportId: REPORT }) },
  { name: `page ${DEEP_PAGES + 1}`, req: {}, sql: (s, deep) => listQuery(s, { limit: 50, after: deep }) },
];

interface Measured {
  store: "postgres" | "pglite";
  jobs: number;
  seedMs: number;
  /** By shape: client round trips, ms; direct SQL, ms; plan. */
  shapes: Record<string, { service: number[]; direct: number[]; plan: string[]; executionMs: number }>;
}

export const listing: Workload = {
  name: "listing",
  title: TITLE,
  defaultRounds: 1,
  async run(ctx) {
    const measured: Measured[] = [];
    const db = await BenchDatabase.connect(benchDatabaseUrl());
    if (typeof db === "string") ctx.say(`  PostgreSQL part skipped: ${db}; set BENCH_DATABASE_URL`);
    else {
      try {
        measured.push(...(await onPostgres(ctx, db)));
      } finally {
        await db.close();
      }
    }
    measured.push(...(await onPGlite(ctx)));
    return { name: "listing", title: TITLE, rows: rows(measured), details: { measured: measured.map(summary) } };
  },
};

/** The seq below which the page DEEP_PAGES + 1 starts, as the service's page_token carries it: the DEEP_PAGES × 50th newest job's. */
async function deepSeq(db: SqlRunner, schema: string): Promise<string> {
  const [row] = await db.query<{ seq: string }>(`SELECT seq::text AS seq FROM "${schema}".jobs ORDER BY seq DESC OFFSET ${DEEP_PAGES * 50 - 1} LIMIT 1`);
  return row?.seq ?? "1";
}

async function timeCalls(n: number, call: () => Promise<unknown>): Promise<number[]> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await call();
    xs.push(performance.now() - t0);
  }
  return xs;
}

/** The page token of page DEEP_PAGES + 1, followed from the first page. */
async function deepToken(client: JobClient): Promise<string> {
  let token = "";
  for (let p = 0; p < DEEP_PAGES; p++) token = (await client.listJobs({ pageToken: token })).nextPageToken;
  return token;
}

async function measureService(ctx: BenchContext, svc: BenchService, direct: SqlRunner | undefined, m: Measured, schema: string, plans: Record<string, { plan: string[]; executionMs: number }>) {
  const token = await deepToken(svc.client);
  for (const shape of SHAPES) {
    const req = shape.name.startsWith("page ") ? { pageToken: token } : shape.req;
    await timeCalls(20, () => svc.client.listJobs(req)); // warm
    const service = await timeCalls(CALLS * ctx.rounds, () => svc.client.listJobs(req));
    const entry = m.shapes[shape.name] ?? { service: [], direct: [], plan: [], executionMs: NaN };
    entry.service = service;
    m.shapes[shape.name] = entry;
    if (direct) {
      const deep = await deepSeq(direct, schema);
      const text = shape.sql(schema, deep);
      await timeCalls(20, () => direct.query(text));
      entry.direct = await timeCalls(CALLS * ctx.rounds, () => direct.query(text));
    }
    Object.assign(entry, plans[shape.name] ?? {});
  }
}

function say(ctx: BenchContext, m: Measured): void {
  ctx.say(
    `  ${m.store}, ${m.jobs.toLocaleString("en")} jobs (seeded in ${fmt(m.seedMs / 1000)} s): ` +
      Object.entries(m.shapes)
        .map(([k, x]) => `${k} p50 ${fmt(median(x.service))} / p99 ${fmt(percentile(x.service, 99))} ms (direct SQL p50 ${fmt(median(x.direct), 2)} ms, executor ${fmt(x.executionMs, 2)} ms)`)
        .join("; "),
  );
  for (const [k, x] of Object.entries(m.shapes)) ctx.say(`    plan, ${k}: ${x.plan.filter((l) => /Scan|Sort|Limit/.test(l)).map((l) => l.trim().replace(/\s+\(cost=[^)]*\)/, "")).join(" | ")}`);
}

async function plansOf(db: SqlRunner, schema: string): Promise<Record<string, { plan: string[]; executionMs: number }>> {
  const deep = await deepSeq(db, schema);
  const out: Record<string, { plan: string[]; executionMs: number }> = {};
  for (const shape of SHAPES) out[shape.name] = await explain(db, shape.sql(schema, deep));
  return out;
}

async function onPostgres(ctx: BenchContext, db: BenchDatabase): Promise<Measured[]> {
  const schema = db.freshSchema();
  ctx.say(`  PostgreSQL: ${db.description}, schema ${schema}`);
  const out: Measured[] = [];
  let svc: BenchService | undefined;
  try {
    svc = await startBenchService({ ...ctx.service, env: { ...ctx.service.env, CHJOB_DATABASE_URL: db.url, CHJOB_DATABASE_SCHEMA: schema } });
    const sql = db.runner();
    let have = 0;
    for (const size of PG_SIZES) {
      const seedMs = await seedFinishedJobs(sql, schema, { count: size - have });
      have = size;
      await sql.query(`VACUUM ANALYZE "${schema}".jobs`);
      const m: Measured = { store: "postgres", jobs: size, seedMs, shapes: {} };
      await measureService(ctx, svc, sql, m, schema, await plansOf(sql, schema));
      say(ctx, m);
      out.push(m);
    }
  } finally {
    await svc?.stop().catch((err: Error) => ctx.say(`  the service did not stop cleanly: ${err.message}`));
    await db.dropSchema(schema).catch((err: Error) => ctx.say(`  could not drop schema ${schema}: ${err.message}`));
  }
  return out;
}

async function onPGlite(ctx: BenchContext): Promise<Measured[]> {
  const root = mkdtempSync(join(tmpdir(), "chjob-bench-listing-"));
  const dir = join(root, "data");
  const out: Measured[] = [];
  try {
    await seedJobStore(dir);
    let have = 0;
    for (const size of PGLITE_SIZES) {
      const db = await openPGlite(join(dir, "jobs"));
      let seedMs = NaN;
      let plans: Record<string, { plan: string[]; executionMs: number }> = {};
      const direct: Record<string, number[]> = {};
      try {
        seedMs = await seedFinishedJobs(db, "chjob", { count: size - have });
        have = size;
        plans = await plansOf(db, "chjob");
        const deep = await deepSeq(db, "chjob");
        for (const shape of SHAPES) {
          const text = shape.sql("chjob", deep);
          await timeCalls(20, () => db.query(text));
          direct[shape.name] = await timeCalls(CALLS * ctx.rounds, () => db.query(text));
        }
      } finally {
        await db.close();
      }
      const m: Measured = { store: "pglite", jobs: size, seedMs, shapes: {} };
      const svc = await startBenchService({ ...ctx.service, env: { ...ctx.service.env, CHJOB_DATA_DIR: dir } });
      try {
        await measureService(ctx, svc, undefined, m, "chjob", plans);
      } finally {
        await svc.stop();
      }
      for (const [k, xs] of Object.entries(direct)) m.shapes[k]!.direct = xs;
      say(ctx, m);
      out.push(m);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return out;
}

function rows(measured: Measured[]): Row[] {
  const out: Row[] = [];
  for (const m of measured) {
    for (const [k, x] of Object.entries(m.shapes)) {
      const s = median(x.service);
      const f = median(x.direct);
      out.push({
        metric: `ListJobs, ${m.store === "postgres" ? "PostgreSQL" : "PGlite"}, ${m.jobs.toLocaleString("en")} jobs, ${k}: p50 (p99 in compare; floor column: the statement run directly, p50)`,
        unit: "ms",
        service: s,
        floor: f,
        compare: `p99 ${fmt(percentile(x.service, 99))} ms; ${scans(x.plan)}`,
        bar: "",
        met: undefined,
      });
    }
  }
  return out;
}

/** The plan's scans, e.g. "Index Scan Backward using jobs_seq_key (51 rows)"; a sequential scan or a filter that drops rows is named. */
function scans(plan: string[]): string {
  const out: string[] = [];
  for (const line of plan) {
    const scan = /(Seq Scan|Bitmap Index Scan|Bitmap Heap Scan|Index Only Scan(?: Backward)?|Index Scan(?: Backward)?)(?: using (\w+))? on (\w+).*rows=([\d.]+)/.exec(line);
    if (scan) out.push(`${scan[1]}${scan[2] ? ` using ${scan[2]}` : ""} (${Number(scan[4])} rows)`);
    const removed = /Rows Removed by Filter: (\d+)/.exec(line);
    if (removed) out.push(`${removed[1]} rows filtered out`);
    if (/^\s*->\s*Sort/.test(line)) out.push("sort");
  }
  return out.join(", ") || "?";
}

function summary(m: Measured) {
  return {
    store: m.store,
    jobs: m.jobs,
    seedMs: m.seedMs,
    shapes: Object.fromEntries(
      Object.entries(m.shapes).map(([k, x]) => [
        k,
        { n: x.service.length, p50: median(x.service), p99: percentile(x.service, 99), directP50: median(x.direct), directP99: percentile(x.direct, 99), executionMs: x.executionMs, plan: x.plan },
      ]),
    ),
  };
}
