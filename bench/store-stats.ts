// What the job store costs per job, counted from the database side: row writes
// (PostgreSQL's pg_stat_user_tables for the service's schema), the versions the
// jobs reached (each versioned write bumps `version`, the INSERT makes 1), and
// the CPU of the PostgreSQL backends that serve the service's connections.
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import postgres from "postgres";
import { openPGlite } from "../src/store/pglite.js";
import { quoteIdent, type SqlClient, type SqlRunner } from "../src/store/sql.js";
import { cpuMsOf } from "./cpu.js";
import { tcpSocketsOf } from "./service.js";

/** Row counters of a schema's tables (pg_stat_user_tables), summed. */
export interface RowCounts {
  ins: number;
  upd: number;
  hotUpd: number;
  del: number;
  seqScan: number;
  idxScan: number;
}

/** Rows inserted, updated and deleted. */
export const rowWrites = (c: RowCounts) => c.ins + c.upd + c.del;
export const zeroCounts = (): RowCounts => ({ ins: 0, upd: 0, hotUpd: 0, del: 0, seqScan: 0, idxScan: 0 });
export const plus = (a: RowCounts, b: RowCounts): RowCounts => ({
  ins: a.ins + b.ins,
  upd: a.upd + b.upd,
  hotUpd: a.hotUpd + b.hotUpd,
  del: a.del + b.del,
  seqScan: a.seqScan + b.seqScan,
  idxScan: a.idxScan + b.idxScan,
});

export const minus = (a: RowCounts, b: RowCounts): RowCounts => ({
  ins: a.ins - b.ins,
  upd: a.upd - b.upd,
  hotUpd: a.hotUpd - b.hotUpd,
  del: a.del - b.del,
  seqScan: a.seqScan - b.seqScan,
  idxScan: a.idxScan - b.idxScan,
});

const sameCounts = (a: RowCounts, b: RowCounts) => a.ins === b.ins && a.upd === b.upd && a.del === b.del;

/**
 * How long a backend may keep counters before they reach the shared statistics:
 * PostgreSQL 15 flushes them when a backend goes idle, at most once a second,
 * and an idle backend with counters still pending flushes within 10 s.
 */
const STATS_QUIET_MS = 11_000;

/**
 * The tables a job's writes go to (its row and its status history). The schema's other
 * tables change with time, not with jobs: `replicas` takes each replica's heartbeat
 * every CHJOB_LEASE / 3, so counters over the whole schema never stay still.
 */
export const JOB_TABLES: readonly string[] = ["jobs", "job_states"];

/** Per job versions, from the jobs table, grouped by the first part of query_id (`<tag>-<i>`). */
export interface VersionCounts {
  jobs: number;
  /** Sum of `version`: 1 for the INSERT plus one per versioned UPDATE. */
  versions: number;
  attempts: number;
}

async function versionsBy(query: (text: string) => Promise<Array<{ tag: string; jobs: number; versions: number; attempts: number }>>, schema: string) {
  const rows = await query(
    `SELECT split_part(query_id, '-', 1) AS tag, count(*)::int AS jobs, sum(version)::int AS versions, sum(attempt)::int AS attempts
     FROM ${quoteIdent(schema)}.jobs GROUP BY 1`,
  );
  return new Map(rows.map((r) => [r.tag, { jobs: r.jobs, versions: r.versions, attempts: r.attempts } satisfies VersionCounts]));
}

/** A PostgreSQL server the bench may make (and drop) schemas in. */
export class BenchDatabase {
  private constructor(
    private readonly sql: ReturnType<typeof postgres>,
    readonly url: string,
    /** host:port/database, for messages. */
    readonly description: string,
  ) {}

  /** Connects, or answers why not. */
  static async connect(url: string): Promise<BenchDatabase | string> {
    let description = "?";
    try {
      const u = new URL(url);
      description = `${u.hostname}:${u.port || 5432}${u.pathname}`;
    } catch {
      return `not a URL: ${url}`;
    }
    const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => undefined });
    try {
      await sql`SELECT 1`;
    } catch (err) {
      await sql.end({ timeout: 1 }).catch(() => undefined);
      return `PostgreSQL at ${description}: ${(err as Error).message}`;
    }
    return new BenchDatabase(sql, url, description);
  }

  /** A schema name no one uses (the service creates the schema itself). */
  freshSchema(): string {
    return `chjob_bench_${process.pid}_${randomBytes(4).toString("hex")}`;
  }

  /** Its one connection as a SqlRunner (a SET stays on it), for SQL of the bench's own. */
  runner(): SqlRunner {
    return { query: (text, params = []) => this.sql.unsafe(text, params as never[]) as never };
  }

  async dropSchema(schema: string): Promise<void> {
    await this.sql.unsafe(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  }

  /** The row counters of the schema's tables (`tables`: only those), as far as backends have flushed them. */
  async counts(schema: string, tables?: readonly string[]): Promise<RowCounts> {
    const [row] = await this.sql<RowCounts[]>`
      SELECT coalesce(sum(n_tup_ins), 0)::float8 AS ins, coalesce(sum(n_tup_upd), 0)::float8 AS upd,
             coalesce(sum(n_tup_hot_upd), 0)::float8 AS "hotUpd", coalesce(sum(n_tup_del), 0)::float8 AS del,
             coalesce(sum(seq_scan), 0)::float8 AS "seqScan", coalesce(sum(idx_scan), 0)::float8 AS "idxScan"
      FROM pg_stat_user_tables WHERE schemaname = ${schema} ${tables ? this.sql`AND relname = ANY(${[...tables]}::text[])` : this.sql``}`;
    return row!;
  }

  /**
   * The counters once every backend has flushed its own: at least `minIns`
   * inserts past `since`, and no change of the row counters for STATS_QUIET_MS
   * (scans are not waited for: the service's idle claim polls keep scanning).
   * `settled` is false when `capMs` passed first.
   */
  async settledCounts(
    schema: string,
    since: RowCounts,
    minIns: number,
    capMs = 45_000,
    tables?: readonly string[],
  ): Promise<{ counts: RowCounts; settled: boolean; waitedMs: number }> {
    const t0 = Date.now();
    let last = await this.counts(schema, tables);
    let lastChange = Date.now();
    for (;;) {
      const quiet = Date.now() - lastChange >= STATS_QUIET_MS;
      if (quiet && last.ins - since.ins >= minIns) return { counts: last, settled: true, waitedMs: Date.now() - t0 };
      if (Date.now() - t0 > capMs) return { counts: last, settled: false, waitedMs: Date.now() - t0 };
      await new Promise((r) => setTimeout(r, 500));
      const now = await this.counts(schema, tables);
      if (!sameCounts(now, last)) lastChange = Date.now();
      last = now;
    }
  }

  /** Jobs, versions and attempts in the schema, by query_id tag. */
  versions(schema: string): Promise<Map<string, VersionCounts>> {
    return versionsBy((text) => this.sql.unsafe(text) as never, schema);
  }

  /** Jobs as stored: status, version, attempt, replica, owner and lease, result. */
  async jobRows(schema: string, ids: string[]): Promise<Array<Record<string, unknown>>> {
    return this.sql.unsafe(
      `SELECT id::text AS id, status, version, attempt, replica, owner, lease_until::text AS lease_until, updated_at::text AS updated_at, result_uri
       FROM ${quoteIdent(schema)}.jobs WHERE id = ANY($1::uuid[])`,
      [ids],
    ) as unknown as Promise<Array<Record<string, unknown>>>;
  }

  /**
   * When each job first reached each status, from its history (job_states: the row's
   * updated_at at that write, microseconds), as ms since the epoch: key `<id>:<status>`.
   */
  async statusTimes(schema: string, ids: string[]): Promise<Map<string, number>> {
    const rows = await this.sql.unsafe<Array<{ id: string; status: number; ms: number }>>(
      `SELECT job_id::text AS id, (state->>'status')::int AS status, min(extract(epoch FROM (state->>'updated_at')::timestamptz) * 1000)::float8 AS ms
       FROM ${quoteIdent(schema)}.job_states WHERE job_id = ANY($1::uuid[]) GROUP BY 1, 2`,
      [ids],
    );
    return new Map(rows.map((r) => [`${r.id}:${r.status}`, r.ms]));
  }

  /** A job's status history (job_states): each status change's version and status, in order. */
  async history(schema: string, id: string): Promise<Array<{ version: number; status: number }>> {
    return this.sql.unsafe<Array<{ version: number; status: number }>>(
      `SELECT version, (state->>'status')::int AS status FROM ${quoteIdent(schema)}.job_states WHERE job_id = $1::uuid ORDER BY version`,
      [id],
    );
  }

  /**
   * LISTENs on `channel` (a connection of its own) and passes on every notification's payload;
   * call the result to stop.
   */
  async listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>> {
    const { unlisten } = await this.sql.listen(channel, onPayload);
    return unlisten;
  }

  /**
   * The server's clock against this process's (performance.timeOrigin + performance.now()):
   * server − local at the middle of the round trip, ms, best of `tries` (the shortest trip).
   */
  async clockOffset(tries = 20): Promise<{ offsetMs: number; roundTripMs: number }> {
    let best = { offsetMs: NaN, roundTripMs: Infinity };
    for (let i = 0; i < tries; i++) {
      const t0 = performance.timeOrigin + performance.now();
      const [row] = await this.sql<Array<{ ms: number }>>`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms`;
      const t1 = performance.timeOrigin + performance.now();
      if (t1 - t0 < best.roundTripMs) best = { offsetMs: row!.ms - (t0 + t1) / 2, roundTripMs: t1 - t0 };
    }
    return best;
  }

  /** PIDs of the backends serving `clientPid`'s connections to this server (matched by the client's port). */
  async backendsOf(clientPid: number): Promise<number[]> {
    const port = Number(new URL(this.url).port || 5432);
    const ports = tcpSocketsOf(clientPid)
      .filter((s) => s.state === "01" && s.remotePort === port)
      .map((s) => s.localPort);
    if (ports.length === 0) return [];
    const rows = await this.sql<Array<{ pid: number }>>`SELECT pid FROM pg_stat_activity WHERE client_port = ANY(${ports}::int[])`;
    return rows.map((r) => r.pid);
  }

  /**
   * Starts counting the CPU of the backends serving `clientPid` (all its
   * connections to this server, the ones it opens meanwhile included, from their
   * start); call the result to stop. `lost`: backends that ended meanwhile (their
   * CPU is not counted).
   */
  async backendCpuWindow(clientPid: number): Promise<() => Promise<{ ms: number; backends: number; lost: number }>> {
    const start = new Map<number, number>();
    for (const pid of await this.backendsOf(clientPid)) {
      const ms = cpuOrUndefined(pid);
      if (ms !== undefined) start.set(pid, ms);
    }
    return async () => {
      const now = await this.backendsOf(clientPid);
      let ms = 0;
      for (const pid of now) ms += (cpuOrUndefined(pid) ?? 0) - (start.get(pid) ?? 0);
      return { ms, backends: now.length, lost: [...start.keys()].filter((p) => !now.includes(p)).length };
    };
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}

function cpuOrUndefined(pid: number): number | undefined {
  try {
    return cpuMsOf(pid);
  } catch {
    return undefined; // ended, or not on this machine
  }
}

/**
 * Jobs, versions and attempts in a stopped service's embedded store
 * (`<dataDir>/jobs`, schema chjob), by query_id tag. PGlite's row counters live
 * only in the process that ran it, so the versions are what can be read afterwards.
 */
export async function pgliteVersions(dataDir: string, schema = "chjob"): Promise<Map<string, VersionCounts>> {
  const db: SqlClient = await openPGlite(join(dataDir, "jobs"));
  try {
    return await versionsBy((text) => db.query(text) as never, schema);
  } finally {
    await db.close();
  }
}
