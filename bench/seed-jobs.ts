// Finished jobs made with SQL (generate_series), for the workloads that need a
// job store holding many of them (bench/workloads/listing.ts, recovery.ts). The
// rows look like the service's own: a DONE job has its result, sizes, four
// versions and a query hash; one in 20 is FAILED, one in 50 CANCELLED; they were
// created one after another over the last hours (inside CHJOB_JOB_RETENTION's
// default 24 h, so the retention sweep leaves them) and `seq` follows that order.
// They spread over `reports` report ids, a few query ids each.
//
// The schema's triggers (a NOTIFY per row, a history row per status) are off while
// the rows go in (session_replication_role = replica: the store's triggers are
// ordinary ones), so that a million rows do not queue a million notifications;
// with `history` each job gets its four states in job_states as the trigger would
// write them (PENDING, RUNNING, READING_RESULTS, the final one).
import { quoteIdent, type SqlRunner } from "../src/store/sql.js";

export interface SeedOptions {
  /** Jobs to add. */
  count: number;
  /** Report ids they spread over (report `r<k>`); default max(10, count / 100), about 100 jobs each. */
  reports?: number;
  /** Also write their states to job_states (4 per job). */
  history?: boolean;
  /** Time span the jobs were created over, ending `endAgoMs` ago; default 20 h ending 1 min ago. */
  spanMs?: number;
  endAgoMs?: number;
}

/** Adds `count` finished jobs to `<schema>.jobs` (numbered on from the jobs there); answers how long it took, ms. */
export async function seedFinishedJobs(db: SqlRunner, schema: string, opts: SeedOptions): Promise<number> {
  const s = quoteIdent(schema);
  const n = opts.count;
  const reports = opts.reports ?? Math.max(10, Math.floor(n / 100));
  const span = opts.spanMs ?? 20 * 3600_000;
  const endAgo = opts.endAgoMs ?? 60_000;
  const t0 = Date.now();
  await db.query("SET session_replication_role = replica");
  try {
    const [{ base } = { base: 0 }] = await db.query<{ base: number }>(`SELECT count(*)::int AS base FROM ${s}.jobs`);
    // i: 1..n; created_at rises with i, so seq (identity, in insertion order) rises with created_at.
    await db.query(
      `INSERT INTO ${s}.jobs (id, report_id, query_id, query_text, status, error, result_uri, result_size, export_uri,
         total_rows, bytes_processed, progress, created_at, updated_at, version, attempt, replica,
         format, compression, content_type, limits, query_hash, target)
       SELECT gen_random_uuid(), r.report_id, r.query_id, r.query_text, r.status,
         CASE r.status WHEN 6 THEN 'Code: 62. DB::Exception: Syntax error: failed at position 8 (seeded job ' || g.i || ')'
                       WHEN 7 THEN 'superseded by a newer job of the same report and query' ELSE '' END,
         CASE WHEN r.status = 5 THEN 's3://dekart-dev-local/' || md5(g.i::text) || '.csv' ELSE '' END,
         CASE WHEN r.status = 5 THEN 1000 + (g.i::bigint * 7919) % 5000000 ELSE 0 END,
         's3://dekart-dev-local/files/' || r.report_id || '/' || r.query_id || '/result.csv',
         CASE WHEN r.status = 5 THEN (g.i::bigint * 31) % 100000 END,
         CASE WHEN r.status = 5 THEN (g.i::bigint * 977) % 10000000 END,
         CASE WHEN r.status = 5 THEN jsonb_build_object('rowsRead', (g.i::bigint * 31) % 100000, 'bytesRead', (g.i::bigint * 977) % 10000000, 'totalRowsToRead', 0, 'elapsedMs', 40 + g.i % 900) ELSE '{}'::jsonb END,
         r.created_at, r.created_at + (40 + g.i % 900) * interval '1 millisecond',
         CASE r.status WHEN 5 THEN 4 WHEN 6 THEN 3 ELSE 3 END, 1, 'seed',
         1, 1, 'text/csv; charset=utf-8; header=present', '{"timeoutMs": 600000}'::jsonb,
         md5(r.query_text), 'chDB (embedded ClickHouse)'
       FROM generate_series($1::int + 1, $1::int + $2::int) AS g(i),
         LATERAL (SELECT 'r' || (g.i % $3::int) AS report_id, 'q' || (g.i::bigint * 13 % 7) || '-' || g.i AS query_id,
                    'SELECT county, avg(price) FROM uk_price_paid WHERE toYear(date) = ' || (1995 + g.i % 30) || ' GROUP BY county' AS query_text,
                    CASE WHEN g.i % 50 = 0 THEN 7 WHEN g.i % 20 = 0 THEN 6 ELSE 5 END::smallint AS status,
                    clock_timestamp() - ($4::float8 + $5::float8 * (1 - (g.i - $1::int)::float8 / $2::int)) * interval '1 millisecond' AS created_at) AS r
       ORDER BY g.i`,
      [base, n, reports, endAgo, span],
    );
    if (opts.history) {
      await db.query(
        `INSERT INTO ${s}.job_states (job_id, version, state)
         SELECT j.id, v.version, to_jsonb(j) - 'query_text' - 'request_hash'
             || jsonb_build_object('status', v.status, 'version', v.version)
         FROM ${s}.jobs j
         CROSS JOIN LATERAL (VALUES (1, 1), (2, 2), (3, CASE WHEN j.status = 5 THEN 4 ELSE j.status END), (4, j.status)) AS v(version, status)
         WHERE j.replica = 'seed' AND v.version <= j.version
           AND NOT EXISTS (SELECT 1 FROM ${s}.job_states h WHERE h.job_id = j.id)`,
      );
    }
  } finally {
    await db.query("SET session_replication_role = DEFAULT");
  }
  return Date.now() - t0;
}

/** The store's list() query, by shape (src/store/sql-job-store.ts: WHERE, ORDER BY seq DESC, LIMIT page + 1), for EXPLAIN. */
export function listQuery(schema: string, shape: { reportId?: string; after?: string; limit: number }): string {
  const where: string[] = [];
  if (shape.reportId !== undefined) where.push(`report_id = '${shape.reportId.replace(/'/g, "''")}'`);
  if (shape.after !== undefined) where.push(`seq < ${BigInt(shape.after)}::bigint`);
  return `SELECT *, seq::text AS position FROM ${quoteIdent(schema)}.jobs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY seq DESC LIMIT ${shape.limit + 1}`;
}

/** EXPLAIN (ANALYZE) of `query`: its plan's lines, and the execution time PostgreSQL reports, ms. */
export async function explain(db: SqlRunner, query: string): Promise<{ plan: string[]; executionMs: number }> {
  const rows = await db.query<Record<string, string>>(`EXPLAIN (ANALYZE, BUFFERS) ${query}`);
  const plan = rows.map((r) => String(Object.values(r)[0]));
  const exec = plan.map((l) => /Execution Time: ([\d.]+) ms/.exec(l)).find(Boolean);
  return { plan, executionMs: exec ? Number(exec[1]) : NaN };
}
