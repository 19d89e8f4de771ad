// The JobStore contract: one set of cases, run against every implementation
// (PGlite in a temp directory, and a real PostgreSQL server). Each case gets a
// fresh schema, so rules that look at the whole store (FIFO, queue bound,
// retention) see only that case's jobs. PGlite keeps one instance open for the
// suite (its first open runs initdb); the cases about reopening go through
// openStore() on the directory itself. PostgreSQL gives every store its own
// pool, so it also races two stores on one schema; its schemas are dropped at
// the end. With nothing on 127.0.0.1:5432 its half is skipped, or fails when CI=true.
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, NO_PROGRESS, type JobSnapshot } from "../src/jobs/job.js";
import { StaleStateError, type ClaimOptions, type CreateOutcome, type JobStore, type NewJobRecord } from "../src/store/job-store.js";
import { DEFAULT_KIND } from "../src/jobs/result-format.js";
import { LATEST_VERSION, migrate, MIGRATIONS } from "../src/store/migrations.js";
import { openStore } from "../src/store/open.js";
import { openPGlite } from "../src/store/pglite.js";
import { openPostgres } from "../src/store/postgres.js";
import { SqlJobStore } from "../src/store/sql-job-store.js";
import { quoteIdent, type SqlClient } from "../src/store/sql.js";
import { seedFinishedJobs } from "../bench/seed-jobs.js";

const PG = { host: "127.0.0.1", port: 5432, database: "test", user: "postgres" };
const PG_URL = `postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}`;
const PG_MISSING = `PostgreSQL not reachable on ${PG.host}:${PG.port}; apt-get install postgresql`;

interface Backend {
  /** A store on `schema`, created and migrated when new (PGlite: on the suite's one open instance, so it is cheap). */
  open(schema: string): Promise<JobStore>;
  /** A store through openStore() from nothing, as a starting service opens it (PGlite: the shared instance closes first; the directory is opened anew). */
  openFresh(schema: string): Promise<JobStore>;
  /** A plain SQL connection to the same database, for what the JobStore does not offer (PGlite: not while an openFresh store is open). */
  raw(): Promise<SqlClient>;
  /** Schema names this run may use start with this. */
  schemaPrefix: string;
  /** Removes what the run made (temp directory, schemas). */
  cleanup(): Promise<void>;
}

interface Ctx {
  /** This case's own schema. */
  schema: string;
  /** Opens a store (on this case's schema unless told); closed after the case. */
  open(schema?: string): Promise<JobStore>;
  /** The same through openStore() from nothing (see Backend.openFresh). */
  openFresh(schema?: string): Promise<JobStore>;
  stores: JobStore[];
}

// ---------------------------------------------------------------- helpers

let seq = 0;

/** A new job record; each gets its own query_id unless told. */
function rec(over: Partial<NewJobRecord> = {}): NewJobRecord {
  const n = ++seq;
  const reportId = over.reportId ?? "report-a";
  const queryId = over.queryId ?? `query-${n}`;
  return {
    id: randomUUID(),
    reportId,
    queryId,
    queryText: `SELECT ${n} AS n, 'é' AS s`,
    exportUri: `s3://exports/${reportId}/${queryId}/`,
    requestId: undefined,
    requestHash: undefined,
    kind: DEFAULT_KIND,
    contentType: "text/csv",
    limits: { timeoutMs: 600_000 },
    reuseMaxAgeMs: undefined,
    queryHash: `hash-${n}`,
    target: "test target",
    ...over,
  };
}

function created(outcome: CreateOutcome): JobSnapshot {
  assert.is(outcome.kind, "created", `create: ${JSON.stringify(outcome)}`);
  return (outcome as Extract<CreateOutcome, { kind: "created" }>).job;
}

async function make(store: JobStore, over: Partial<NewJobRecord> = {}, queueLimit = 1000): Promise<JobSnapshot> {
  return created(await store.create(rec(over), queueLimit));
}

function claimOpts(replica: string, over: Partial<ClaimOptions> = {}): ClaimOptions {
  return { replica, max: 10, leaseMs: 60_000, maxAttempts: 3, ...over };
}

const idsOf = (jobs: readonly JobSnapshot[]) => jobs.map((j) => j.id);

async function mustGet(store: JobStore, id: string): Promise<JobSnapshot> {
  const job = await store.get(id);
  assert.ok(job, `job ${id} should exist`);
  return job!;
}

async function rejection(p: Promise<unknown>, what: string): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.unreachable(`${what} should have been refused`);
  throw new Error("unreachable");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pid of a process that has exited. */
function deadPid(): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", () => resolve(child.pid!));
  });
}

/** The client, with a close() that leaves it open (stores on the shared PGlite instance close only themselves). */
function unclosable(db: SqlClient): SqlClient {
  return {
    description: db.description,
    query: (text, params) => db.query(text, params),
    transaction: (body) => db.transaction(body),
    withSession: (body) => db.withSession(body),
    close: async () => undefined,
  };
}

function canConnect(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

// ---------------------------------------------------------------- the contract

type Case = (ctx: Ctx & { backend: Backend }) => Promise<void>;

interface ContractOptions {
  /** Two stores can be open at once on one schema (not PGlite: one connection per directory); adds the racing cases. */
  concurrent: boolean;
  /** Cases of this implementation only. */
  extra?: (test: (title: string, fn: Case) => void) => void;
  /** Why every case is skipped (nothing is opened); undefined to run them. */
  skip?: string;
}

/** Registers every case of the contract as one suite against `backend`. */
function contract(name: string, backend: () => Promise<Backend>, { concurrent: racing, extra, skip }: ContractOptions): void {
  const cases = suite<Ctx & { backend: Backend }>(`JobStore contract: ${name}${skip ? ` (skipped: ${skip})` : ""}`);
  const test = (title: string, fn: Case) => (skip ? cases.skip(title, fn) : cases(title, fn));
  let n = 0;

  if (!skip) {
    cases.before(async (ctx) => {
      ctx.backend = await backend();
    });
    cases.after(async (ctx) => {
      await ctx.backend?.cleanup();
    });
  }
  cases.before.each((ctx) => {
    ctx.schema = `${ctx.backend.schemaPrefix}_${++n}`;
    ctx.stores = [];
    const kept = (store: JobStore) => {
      ctx.stores.push(store);
      return store;
    };
    ctx.open = async (schema = ctx.schema) => kept(await ctx.backend.open(schema));
    ctx.openFresh = async (schema = ctx.schema) => kept(await ctx.backend.openFresh(schema));
  });
  cases.after.each(async (ctx) => {
    // Closing twice is harmless; a case that closed its store itself is fine.
    for (const s of ctx.stores.splice(0)) await s.close().catch(() => undefined);
  });
  const concurrent = (title: string, fn: Case) => {
    if (racing) test(`${title} (two stores on one schema)`, fn);
  };

  test("create and get: every field round-trips; PENDING, version 1, attempt 0; an unknown id is undefined", async (ctx) => {
    const store = await ctx.open();
    const before = Date.now();
    const r = rec({ reportId: "report-rt", queryId: "q-rt", queryText: "SELECT 'naïve ✓' AS s", requestId: "req-rt_1", requestHash: "hash-1" });
    const outcome = await store.create(r, 10);
    const after = Date.now();
    assert.is(outcome.kind, "created");
    assert.equal((outcome as { superseded: JobSnapshot[] }).superseded, []);
    const job = created(outcome);
    assert.equal(
      { ...job, createdAt: 0, updatedAt: 0 },
      {
        id: r.id,
        reportId: "report-rt",
        queryId: "q-rt",
        queryText: "SELECT 'naïve ✓' AS s",
        status: JobStatus.PENDING,
        error: "",
        resultUri: "",
        resultSize: 0,
        exportUri: "s3://exports/report-rt/q-rt/",
        totalRows: undefined,
        bytesProcessed: undefined,
        progress: NO_PROGRESS,
        createdAt: 0,
        updatedAt: 0,
        version: 1,
        attempt: 0,
        replica: "",
        requestId: "req-rt_1",
        format: DEFAULT_KIND.format,
        compression: DEFAULT_KIND.compression,
        contentType: "text/csv",
        limits: { timeoutMs: 600_000 },
        reuseMaxAgeMs: undefined,
        reusedFrom: "",
        traceParent: "",
      },
    );
    assert.ok(job.createdAt >= before - 1000 && job.createdAt <= after + 1000, `createdAt ${job.createdAt} is not now (${before}..${after})`);
    assert.ok(job.updatedAt >= job.createdAt && job.updatedAt - job.createdAt < 1000, `updatedAt ${job.updatedAt} vs createdAt ${job.createdAt}`);
    assert.equal(await store.get(r.id), job);
    assert.is((await store.get(randomUUID())), undefined);
    // No request_id: "".
    const plain = await make(store);
    assert.is(plain.requestId, "");
    assert.is((await mustGet(store, plain.id)).requestId, "");
    assert.is(await store.pendingCount(), 2);
  });

  test("list: newest first, by report, keyset pages stable across inserts made between pages", async (ctx) => {
    const store = await ctx.open();
    const mine: JobSnapshot[] = [];
    const made: string[] = []; // every job, in creation order
    // More than 9 of them: positions go past one digit (they once sorted as text, '9' before '10').
    for (let i = 0; i < 12; i++) {
      mine.push(await make(store, { reportId: "report-list" }));
      made.push(mine.at(-1)!.id);
      if (i % 3 === 0) made.push((await make(store, { reportId: "report-other" })).id);
    }
    const newestFirst = idsOf(mine).reverse();

    const all = await store.list({ reportId: "report-list", limit: 100, after: undefined });
    assert.equal(idsOf(all.jobs), newestFirst);
    assert.is(all.next, undefined);
    assert.equal(all.jobs[0], await mustGet(store, mine.at(-1)!.id), "listed jobs are full snapshots");
    // Exactly one page's worth: no next.
    assert.is((await store.list({ reportId: "report-list", limit: 12, after: undefined })).next, undefined);

    const seen: string[] = [];
    const added: string[] = [];
    const pages: number[] = [];
    let page = await store.list({ reportId: "report-list", limit: 5, after: undefined });
    for (;;) {
      seen.push(...idsOf(page.jobs));
      pages.push(page.jobs.length);
      if (page.next === undefined) break;
      // Creates between pages (newer than every page so far), this report's and another's.
      added.push((await make(store, { reportId: "report-list" })).id);
      made.push(added.at(-1)!, (await make(store, { reportId: "report-other" })).id);
      page = await store.list({ reportId: "report-list", limit: 5, after: page.next });
    }
    assert.equal(pages, [5, 5, 2]);
    assert.equal(seen, newestFirst, "no duplicates, no skips, none of the newer jobs");
    assert.is(added.length, 2);

    // Every report, newest first, paged too.
    const everything: string[] = [];
    let next: string | undefined;
    do {
      const p = await store.list({ reportId: undefined, limit: 4, after: next });
      everything.push(...idsOf(p.jobs));
      next = p.next;
    } while (next !== undefined);
    assert.equal(everything, [...made].reverse());
    assert.equal((await store.list({ reportId: "nobody", limit: 5, after: undefined })).jobs, []);
  });

  test("write: the right fromVersion gives version + 1 and sets exactly the fields given", async (ctx) => {
    const store = await ctx.open();
    const job = await make(store);
    const [running] = await store.claim(claimOpts("r1"));
    assert.is(running!.version, 2);

    const progress = { rowsRead: 1234, bytesRead: 56789, totalRowsToRead: 100000, elapsedMs: 420 };
    const p = await store.write(job.id, 2, { progress });
    assert.is(p.version, 3);
    assert.equal(p.progress, progress);
    assert.is(p.status, JobStatus.RUNNING);
    assert.ok(p.updatedAt >= running!.updatedAt);

    const reading = await store.write(job.id, 3, { status: JobStatus.READING_RESULTS, totalRows: 0, bytesProcessed: 5_000_000_000 });
    assert.is(reading.version, 4);
    assert.is(reading.status, JobStatus.READING_RESULTS);
    assert.is(reading.totalRows, 0, "0 rows measured stays 0, not undefined");
    assert.is(reading.bytesProcessed, 5_000_000_000, "beyond 32 bits");
    assert.equal(reading.progress, progress, "progress unchanged when not written");

    const done = await store.write(job.id, 4, { status: JobStatus.DONE, resultUri: `s3://results/${job.id}.csv`, resultSize: 6_000_000_123 }, { release: true });
    assert.equal(
      { ...done, updatedAt: 0 },
      {
        ...job,
        status: JobStatus.DONE,
        resultUri: `s3://results/${job.id}.csv`,
        resultSize: 6_000_000_123,
        totalRows: 0,
        bytesProcessed: 5_000_000_000,
        progress,
        version: 5,
        attempt: 1,
        replica: "r1",
        updatedAt: 0,
      },
    );
    assert.equal(await store.get(job.id), done);

    // Not measured: undefined, distinct from 0.
    const other = await make(store);
    await store.claim(claimOpts("r1"));
    const failed = await store.write(other.id, 2, { status: JobStatus.FAILED, error: "boom: ClickHouse said no", totalRows: undefined, bytesProcessed: undefined });
    assert.is(failed.totalRows, undefined);
    assert.is(failed.bytesProcessed, undefined);
    assert.is(failed.error, "boom: ClickHouse said no");
    const back = await mustGet(store, other.id);
    assert.is(back.totalRows, undefined);
    assert.is(back.status, JobStatus.FAILED);
    assert.is(back.version, 3);
  });

  test("write: a stale fromVersion throws StaleStateError with the current state; a vanished job with none", async (ctx) => {
    const store = await ctx.open();
    const job = await make(store);
    const [claimed] = await store.claim(claimOpts("r1"));
    const moved = await store.write(job.id, claimed!.version, { progress: { rowsRead: 1, bytesRead: 2, totalRowsToRead: 3, elapsedMs: 4 } });

    const err = await rejection(store.write(job.id, claimed!.version, { status: JobStatus.READING_RESULTS }), "a write at an old version");
    assert.instance(err, StaleStateError);
    const stale = err as StaleStateError;
    assert.is(stale.id, job.id);
    assert.equal(stale.current, moved);
    assert.equal(await store.get(job.id), moved, "the stale write changed nothing");

    // Cancelled underneath the writer.
    const cancelled = await store.requestCancel(job.id, "cancelled by the user");
    const err2 = (await rejection(store.write(job.id, moved.version, { status: JobStatus.READING_RESULTS }), "a write after a cancel")) as StaleStateError;
    assert.instance(err2, StaleStateError);
    assert.is(err2.current?.status, JobStatus.CANCELLED);
    assert.equal(err2.current, cancelled);

    const ghost = randomUUID();
    const err3 = (await rejection(store.write(ghost, 1, { status: JobStatus.RUNNING }), "a write to no job")) as StaleStateError;
    assert.instance(err3, StaleStateError);
    assert.is(err3.current, undefined);
  });

  test("changes: every committed state of every job, each job's in version order", async (ctx) => {
    const store = await ctx.open();
    const seen: JobSnapshot[] = [];
    const sub = store.changes.subscribe((s) => seen.push(s));
    try {
      const a = await make(store, { queryId: "same" });
      const [ra] = await store.claim(claimOpts("r1"));
      await store.write(a.id, ra!.version, { progress: { rowsRead: 5, bytesRead: 6, totalRowsToRead: 7, elapsedMs: 8 } });
      const b = await make(store, { queryId: "same" }); // supersedes a
      assert.instance(await rejection(store.write(a.id, 3, { status: JobStatus.READING_RESULTS }), "a write to a superseded job"), StaleStateError);
      await store.release(a.id, "r1");
      await store.claim(claimOpts("r2"));
      await store.requestCancel(b.id, "no longer wanted");
      await store.requestCancel(b.id, "again: a finished job is not written");

      const finalA = await mustGet(store, a.id);
      const finalB = await mustGet(store, b.id);
      const of = (id: string) => seen.filter((s) => s.id === id);
      assert.equal(of(a.id).map((s) => s.version), [1, 2, 3, 4]);
      assert.equal(of(a.id).map((s) => s.status), [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.CANCELLED]);
      assert.equal(of(a.id).at(-1), finalA);
      assert.equal(of(b.id).map((s) => s.version), [1, 2, 3]);
      assert.equal(of(b.id).map((s) => s.status), [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.CANCELLED]);
      assert.equal(of(b.id).at(-1), finalB);
      // The superseded state is announced before the job that superseded it.
      assert.ok(seen.findIndex((s) => s.id === a.id && s.version === 4) < seen.findIndex((s) => s.id === b.id));
    } finally {
      sub.unsubscribe();
    }
  });

  test("committed: each state this store commits, once, in order (what metrics count)", async (ctx) => {
    const store = await ctx.open();
    const changes: JobSnapshot[] = [];
    const commits: JobSnapshot[] = [];
    const subs = [store.changes.subscribe((s) => changes.push(s)), store.committed.subscribe((s) => commits.push(s))];
    try {
      const a = await make(store, { queryId: "same" });
      const [ra] = await store.claim(claimOpts("r1"));
      await store.write(a.id, ra!.version, { progress: { rowsRead: 1, bytesRead: 2, totalRowsToRead: 3, elapsedMs: 4 } });
      const b = await make(store, { queryId: "same" }); // supersedes a
      await store.requestCancel(b.id, "no longer wanted");
      await store.requestCancel(b.id, "again: a finished job is not written");
      const key = (s: JobSnapshot) => `${s.id}@${s.version}:${JobStatus[s.status]}`;
      assert.equal(commits.map(key), changes.map(key), "without followed jobs, every change is a commit of this store");
      assert.equal(commits.map(key), [`${a.id}@1:PENDING`, `${a.id}@2:RUNNING`, `${a.id}@3:RUNNING`, `${a.id}@4:CANCELLED`, `${b.id}@1:PENDING`, `${b.id}@2:CANCELLED`]);
    } finally {
      subs.forEach((s) => s.unsubscribe());
    }
  });

  concurrent("committed: a followed job's states written by another store are changes here, not commits", async (ctx) => {
    const here = await ctx.open();
    const there = await ctx.open();
    const job = await make(here);
    const changes: JobSnapshot[] = [];
    const commits: JobSnapshot[] = [];
    const subs = [here.changes.subscribe((s) => changes.push(s)), here.committed.subscribe((s) => commits.push(s))];
    const unfollow = here.follow(job.id);
    const theirs: JobSnapshot[] = [];
    const sub = there.committed.subscribe((s) => theirs.push(s));
    try {
      await there.requestCancel(job.id, "cancelled elsewhere");
      for (let i = 0; i < 100 && !changes.some((s) => s.id === job.id && s.status === JobStatus.CANCELLED); i++) await sleep(50);
      assert.ok(changes.some((s) => s.id === job.id && s.status === JobStatus.CANCELLED), "the followed job's end reached this store");
      assert.equal(commits, [], "but this store committed nothing");
      assert.equal(theirs.map((s) => s.status), [JobStatus.CANCELLED], "the store that wrote it committed it");
    } finally {
      unfollow();
      sub.unsubscribe();
      subs.forEach((s) => s.unsubscribe());
    }
  });

  test("queueStats: PENDING jobs and the oldest one's age by the database's clock; none waiting is 0 and 0", async (ctx) => {
    const store = await ctx.open();
    assert.equal(await store.queueStats(), { pending: 0, oldestPendingAgeMs: 0 });
    const first = await make(store);
    await sleep(300);
    await make(store);
    await make(store);
    const stats = await store.queueStats();
    assert.is(stats.pending, 3);
    assert.ok(stats.oldestPendingAgeMs >= 250 && stats.oldestPendingAgeMs < 10_000, `oldest ${stats.oldestPendingAgeMs} ms`);
    // Claimed and cancelled jobs no longer wait; the oldest is then a younger one.
    assert.equal(idsOf(await store.claim(claimOpts("r1", { max: 1 }))), [first.id]);
    const after = await store.queueStats();
    assert.is(after.pending, 2);
    assert.ok(after.oldestPendingAgeMs < stats.oldestPendingAgeMs, `${after.oldestPendingAgeMs} < ${stats.oldestPendingAgeMs}`);
    for (const j of (await store.list({ reportId: undefined, limit: 10, after: undefined })).jobs) await store.requestCancel(j.id, "done with it");
    assert.equal(await store.queueStats(), { pending: 0, oldestPendingAgeMs: 0 });
  });

  test("traceParent: kept with the job through claims and history; none is ''", async (ctx) => {
    const store = await ctx.open();
    const traceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const traced = await make(store, { traceParent });
    assert.is(traced.traceParent, traceParent);
    assert.is((await make(store)).traceParent, "");
    const [claimed] = await store.claim(claimOpts("r1", { max: 1 }));
    assert.is(claimed!.id, traced.id);
    assert.is(claimed!.traceParent, traceParent);
    await store.write(traced.id, claimed!.version, { status: JobStatus.READING_RESULTS });
    const done = await store.write(traced.id, claimed!.version + 1, { status: JobStatus.DONE, resultUri: "s3://b/k", resultSize: 1 });
    assert.is(done.traceParent, traceParent);
    const history = await store.statesBetween(traced.id, 0, done.version);
    assert.equal(history.map((s) => s.traceParent), history.map(() => traceParent));
  });

  test("supersede: a PENDING job of the same key ends CANCELLED naming the new job; the new one is claimable", async (ctx) => {
    const store = await ctx.open();
    const first = await make(store, { reportId: "rep", queryId: "q" });
    const unrelated = await make(store, { reportId: "rep", queryId: "q-other" });
    const secondRec = rec({ reportId: "rep", queryId: "q" });
    const outcome = await store.create(secondRec, 1000);
    const second = created(outcome);
    const { superseded } = outcome as Extract<CreateOutcome, { kind: "created" }>;
    assert.is(superseded.length, 1);
    const old = superseded[0]!;
    assert.is(old.id, first.id);
    assert.is(old.status, JobStatus.CANCELLED);
    assert.is(old.version, 2);
    assert.match(old.error, second.id);
    assert.equal(await store.get(first.id), old);
    assert.is((await mustGet(store, unrelated.id)).status, JobStatus.PENDING, "another query_id is untouched");

    const claimed = await store.claim(claimOpts("r1"));
    assert.equal(idsOf(claimed), [unrelated.id, second.id], "the cancelled job is never claimed; the new one runs at once");
  });

  test("supersede: a RUNNING job ends CANCELLED; the new one waits until the old one is released", async (ctx) => {
    const store = await ctx.open();
    const first = await make(store, { reportId: "rep", queryId: "q" });
    assert.equal(idsOf(await store.claim(claimOpts("r1"))), [first.id]);
    const outcome = await store.create(rec({ reportId: "rep", queryId: "q" }), 1000);
    const second = created(outcome);
    const old = (outcome as Extract<CreateOutcome, { kind: "created" }>).superseded;
    assert.equal(idsOf(old), [first.id]);
    assert.is(old[0]!.status, JobStatus.CANCELLED);
    assert.is(old[0]!.replica, "r1");
    assert.match(old[0]!.error, second.id);

    assert.equal(await store.claim(claimOpts("r2")), [], "the old export still holds the path");
    assert.equal(await store.renewLeases("r1", 60_000), [first.id], "the old job stays r1's until released");
    await store.release(first.id, "r-somebody-else");
    assert.equal(await store.claim(claimOpts("r2")), [], "only the owner releases");
    await store.release(first.id, "r1");
    const [taken] = await store.claim(claimOpts("r2"));
    assert.is(taken?.id, second.id);
    assert.is(taken?.status, JobStatus.RUNNING);
    assert.equal(await store.renewLeases("r1", 60_000), []);
    assert.equal(await mustGet(store, first.id), old[0], "release does not write a new state");
  });

  test("create with claimFor: claimed in the same transaction only when no job waits and the export path is free", async (ctx) => {
    const store = await ctx.open();
    const claimFor = { replica: "r1", leaseMs: 60_000 };
    const fast = await store.create(rec({ reportId: "rep", queryId: "a" }), 1000, claimFor);
    assert.is(fast.kind, "created");
    const { job, claimed } = fast as Extract<CreateOutcome, { kind: "created" }>;
    assert.is(job.status, JobStatus.PENDING, "the caller is answered with the job as created");
    assert.is(job.version, 1);
    assert.ok(claimed, "an empty queue: the creating replica takes it at once");
    assert.equal([claimed.status, claimed.version, claimed.attempt, claimed.replica], [JobStatus.RUNNING, 2, 1, "r1"]);
    assert.equal(await mustGet(store, job.id), claimed);
    assert.equal(await store.renewLeases("r1", 60_000), [job.id], "and holds its lease");
    assert.equal((await store.statesBetween(job.id, 0, 3)).map((s) => s.status), [JobStatus.PENDING, JobStatus.RUNNING], "PENDING then RUNNING in the history");

    const waiting = created(await store.create(rec({ reportId: "rep", queryId: "b" }), 1000));
    const behind = await store.create(rec({ reportId: "rep", queryId: "c" }), 1000, claimFor);
    assert.is((behind as Extract<CreateOutcome, { kind: "created" }>).claimed, undefined, "another job waits: FIFO, no claim");
    assert.equal(idsOf(await store.claim(claimOpts("r2", { max: 2 }))), [waiting.id, created(behind).id]);

    // The key's export path is held by the RUNNING job it supersedes: no claim until it is released.
    const superseding = await store.create(rec({ reportId: "rep", queryId: "a" }), 1000, claimFor);
    assert.is((superseding as Extract<CreateOutcome, { kind: "created" }>).claimed, undefined, "the superseded export still holds the path");
    assert.equal(idsOf((superseding as Extract<CreateOutcome, { kind: "created" }>).superseded), [job.id]);
  });

  test("reusable: DONE jobs of the same query hash, kind and target within the age, newest first; never the asking job", async (ctx) => {
    const store = await ctx.open();
    const finish = async (over: Partial<NewJobRecord>) => {
      const job = created(await store.create(rec(over), 100));
      const [running] = await store.claim(claimOpts("r1", { max: 1 }));
      assert.is(running?.id, job.id);
      const reading = await store.write(job.id, running!.version, { status: JobStatus.READING_RESULTS });
      return store.write(job.id, reading.version, { status: JobStatus.DONE, resultUri: `s3://b/${job.id}.csv`, resultSize: 7, totalRows: 3 }, { release: true });
    };
    const older = await finish({ queryHash: "same", reportId: "reuse-1" });
    const newer = await finish({ queryHash: "same", reportId: "reuse-2" });
    await finish({ queryHash: "other" });
    await finish({ queryHash: "same", target: "another ClickHouse" });
    await finish({ queryHash: "same", kind: { ...DEFAULT_KIND, compression: DEFAULT_KIND.compression + 1 } as typeof DEFAULT_KIND });
    const asking = created(await store.create(rec({ queryHash: "same" }), 100));
    const found = await store.reusable({ queryHash: "same", kind: DEFAULT_KIND, target: "test target", maxAgeMs: 60_000, forJob: asking.id });
    assert.equal(found.map((j) => j.id), [newer.id, older.id]);
    assert.is(found[0]!.totalRows, 3);
    assert.equal(await store.reusable({ queryHash: "same", kind: DEFAULT_KIND, target: "test target", maxAgeMs: 60_000, forJob: newer.id }).then((j) => j.map((x) => x.id)), [older.id], "never the asking job");
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(await store.reusable({ queryHash: "same", kind: DEFAULT_KIND, target: "test target", maxAgeMs: 10, forJob: asking.id }), [], "older than the age");
  });

  test("statesBetween: the status changes and new attempts between two versions, in order, as whole jobs", async (ctx) => {
    const store = await ctx.open();
    const job = created(await store.create(rec(), 100));
    const [running] = await store.claim(claimOpts("r1"));
    const p1 = await store.write(job.id, running!.version, { progress: { rowsRead: 5, bytesRead: 50, totalRowsToRead: 10, elapsedMs: 1 } });
    const reading = await store.write(job.id, p1.version, { status: JobStatus.READING_RESULTS });
    const done = await store.write(job.id, reading.version, { status: JobStatus.DONE, resultUri: "s3://b/k", resultSize: 1 }, { release: true });
    const between = await store.statesBetween(job.id, job.version, done.version);
    assert.equal(between.map((s) => [s.version, s.status]), [[running!.version, JobStatus.RUNNING], [reading.version, JobStatus.READING_RESULTS]], "progress-only versions are not kept");
    assert.is(between[1]!.queryText, job.queryText);
    assert.is(between[0]!.replica, "r1");
    assert.is(between[0]!.attempt, 1);
    assert.equal(await store.statesBetween(job.id, done.version, done.version + 5), []);
  });

  test("heartbeat and liveReplicas: others seen within the window and not stopping", async (ctx) => {
    const store = await ctx.open();
    await store.heartbeat("r1", false);
    await store.heartbeat("r2", false);
    await store.heartbeat("r3", true);
    assert.equal(await store.liveReplicas("r1", 60_000), ["r2"]);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(await store.liveReplicas("r1", 10), [], "not seen within 10 ms");
  });

  concurrent("follow: another store's write of a followed job reaches this store's changes (NOTIFY); the queue wakes", async (ctx) => {
    const [a, b] = [await ctx.open(), await ctx.open()];
    const job = created(await a.create(rec(), 100));
    const seen: JobSnapshot[] = [];
    let queueWakes = 0;
    const subs = [b.changes.subscribe((s) => seen.push(s)), b.queueChanged.subscribe(() => queueWakes++)];
    const unfollow = b.follow(job.id);
    try {
      const [running] = await a.claim(claimOpts("r1"));
      await a.write(job.id, running!.version, { status: JobStatus.READING_RESULTS });
      const until = Date.now() + 5000;
      while (!seen.some((s) => s.status === JobStatus.READING_RESULTS) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.ok(seen.some((s) => s.id === job.id && s.status === JobStatus.READING_RESULTS), `b saw ${seen.map((s) => JobStatus[s.status])}`);
      created(await a.create(rec(), 100));
      const until2 = Date.now() + 5000;
      while (queueWakes === 0 && Date.now() < until2) await new Promise((r) => setTimeout(r, 20));
      assert.ok(queueWakes > 0, "a new job wakes the other store's queue listeners");
    } finally {
      unfollow();
      subs.forEach((s) => s.unsubscribe());
    }
  });

  concurrent("follow: the state another store writes arrives whole, field for field as get() reads it: statuses, progress, a long error", async (ctx) => {
    const [a, b] = [await ctx.open(), await ctx.open()];
    const job = created(await a.create(rec({ limits: { timeoutMs: 5000, maxRowsToRead: 7 } }), 100));
    const seen: JobSnapshot[] = [];
    const sub = b.changes.subscribe((s) => s.id === job.id && seen.push(s));
    const unfollow = b.follow(job.id);
    const arrived = async (version: number) => {
      const until = Date.now() + 5000;
      while (!seen.some((s) => s.version >= version) && Date.now() < until) await sleep(10);
      const got = seen.find((s) => s.version === version);
      assert.ok(got, `b saw version ${version} (saw ${seen.map((s) => s.version)})`);
      assert.equal(got, await a.get(job.id), `version ${version} as b heard it equals the stored row`);
    };
    try {
      assert.ok(await b.get(job.id)); // b has read the job once: it knows its query text
      const [running] = await a.claim(claimOpts("r1"));
      await arrived(running!.version);
      // Progress-only news goes out at most about once a second per job (the trigger's throttle).
      await sleep(1000);
      const progressed = await a.write(job.id, running!.version, { progress: { rowsRead: 5, bytesRead: 50, totalRowsToRead: 10, elapsedMs: 12 } });
      await arrived(progressed.version);
      // Longer than NOTIFY's 8000 bytes with the rest of the state: it goes as id:version and is read.
      const failed = await a.write(job.id, progressed.version, { status: JobStatus.FAILED, error: "e".repeat(9000) }, { release: true });
      await arrived(failed.version);
      assert.is(seen.at(-1)!.error.length, 9000);
    } finally {
      unfollow();
      sub.unsubscribe();
    }
  });

  test("queue bound: the (N+1)th waiting job is refused as queue-full and nothing is stored", async (ctx) => {
    const store = await ctx.open();
    const kept = [];
    for (let i = 0; i < 3; i++) kept.push(await make(store, {}, 3));
    const refused = rec({ requestId: "req-full", requestHash: "h" });
    const outcome = await store.create(refused, 3);
    assert.equal(outcome, { kind: "queue-full", pending: 3 });
    assert.is(await store.get(refused.id), undefined);
    assert.is(await store.pendingCount(), 3);
    assert.is((await store.list({ reportId: undefined, limit: 100, after: undefined })).jobs.length, 3);
    // The refused request_id was not kept: once there is room, the same request is created, not "existing".
    await store.claim(claimOpts("r1", { max: 1 }));
    assert.is(await store.pendingCount(), 2);
    const again = created(await store.create({ ...refused, id: randomUUID() }, 3));
    assert.is(again.requestId, "req-full");
    // Running jobs do not count, waiting ones do.
    assert.is((await store.create(rec(), 3)).kind, "queue-full");
    assert.is((await store.create(rec(), 4)).kind, "created");
  });

  test("idempotency: the same request_id and request returns that job; another request with it is a conflict", async (ctx) => {
    const store = await ctx.open();
    const first = created(await store.create(rec({ requestId: "req-1", requestHash: "hash-A" }), 1000));
    const replay = await store.create(rec({ requestId: "req-1", requestHash: "hash-A" }), 1000);
    assert.is(replay.kind, "existing");
    assert.equal((replay as { job: JobSnapshot }).job, first);
    const conflict = await store.create(rec({ requestId: "req-1", requestHash: "hash-B" }), 1000);
    assert.is(conflict.kind, "conflict");
    assert.is((conflict as { job: JobSnapshot }).job.id, first.id);
    assert.is((await store.list({ reportId: undefined, limit: 100, after: undefined })).jobs.length, 1, "nothing new stored");
    // A replay answers even when the queue is full (it adds nothing).
    assert.is((await store.create(rec({ requestId: "req-1", requestHash: "hash-A" }), 1)).kind, "existing");
    // Another request_id is another job.
    assert.is((await store.create(rec({ requestId: "req-2", requestHash: "hash-A" }), 1000)).kind, "created");
  });

  test("claim: FIFO, at most max, sets RUNNING, attempt 1 and the replica, and the job is owned", async (ctx) => {
    const store = await ctx.open();
    const jobs = [];
    for (let i = 0; i < 5; i++) jobs.push(await make(store, { reportId: `rep-${i % 2}` }));
    assert.equal(await store.claim(claimOpts("r1", { max: 0 })), []);
    const first = await store.claim(claimOpts("r1", { max: 2 }));
    assert.equal(idsOf(first), idsOf(jobs.slice(0, 2)));
    for (const j of first) {
      const before = jobs.find((x) => x.id === j.id)!;
      assert.equal({ ...j, updatedAt: 0 }, { ...before, status: JobStatus.RUNNING, attempt: 1, replica: "r1", version: 2, updatedAt: 0 });
      assert.equal(await store.get(j.id), j);
    }
    assert.is(await store.pendingCount(), 3);
    const rest = await store.claim(claimOpts("r2", { max: 10 }));
    assert.equal(idsOf(rest), idsOf(jobs.slice(2)));
    assert.ok(rest.every((j) => j.replica === "r2" && j.attempt === 1 && j.status === JobStatus.RUNNING));
    assert.equal(await store.claim(claimOpts("r3")), []);
    assert.equal((await store.renewLeases("r1", 60_000)).sort(), idsOf(first).sort());
    assert.equal((await store.renewLeases("r2", 60_000)).sort(), idsOf(rest).sort());
    assert.is(await store.pendingCount(), 0);
  });

  concurrent("claim: concurrent claimers never take the same job and together take all", async (ctx) => {
    const a = await ctx.open();
    const b = await ctx.open();
    const N = 60;
    const jobs = [];
    for (let i = 0; i < N; i++) jobs.push(await make(i % 2 ? a : b));
    const drain = async (store: JobStore, replica: string) => {
      const got: JobSnapshot[] = [];
      for (;;) {
        const batch = await store.claim(claimOpts(replica, { max: 3 }));
        if (batch.length === 0) return got;
        got.push(...batch);
      }
    };
    const results = await Promise.all([drain(a, "a1"), drain(b, "b1"), drain(a, "a2"), drain(b, "b2")]);
    const taken = results.flat();
    const ids = idsOf(taken);
    assert.is(new Set(ids).size, ids.length, "a job was claimed twice");
    assert.equal([...ids].sort(), idsOf(jobs).sort(), "every job claimed");
    assert.ok(results.filter((r) => r.length > 0).length >= 2, `only one claimer got work: ${results.map((r) => r.length)}`);
    for (const [i, replica] of ["a1", "b1", "a2", "b2"].entries()) {
      assert.ok(results[i]!.every((j) => j.replica === replica && j.attempt === 1));
    }
    assert.equal(await a.claim(claimOpts("late")), []);
    assert.is(await b.pendingCount(), 0);
  });

  concurrent("queue bound: concurrent creates never leave more than N waiting", async (ctx) => {
    const a = await ctx.open();
    const b = await ctx.open();
    const limit = 5;
    const outcomes = await Promise.all(Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).create(rec(), limit)));
    const made = outcomes.filter((o) => o.kind === "created").length;
    const full = outcomes.filter((o) => o.kind === "queue-full").length;
    assert.is(made + full, 24);
    assert.is(await a.pendingCount(), made);
    assert.is(made, limit, `${made} jobs waiting with a queue limit of ${limit}`);
  });

  concurrent("idempotency: concurrent creates with one request_id make one job", async (ctx) => {
    const a = await ctx.open();
    const b = await ctx.open();
    const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).create(rec({ requestId: "req-race", requestHash: "h" }), 1000)));
    const kinds = outcomes.map((o) => o.kind).sort();
    assert.equal(kinds, ["created", ...Array(7).fill("existing")]);
    const id = created(outcomes.find((o) => o.kind === "created")!).id;
    assert.ok(outcomes.every((o) => (o as { job: JobSnapshot }).job.id === id));
    assert.is((await a.list({ reportId: undefined, limit: 100, after: undefined })).jobs.length, 1);
  });

  test("leases: after expireLeases another replica takes the orphan: RUNNING again, attempt 2, new replica", async (ctx) => {
    const store = await ctx.open();
    const job = await make(store);
    const other = await make(store);
    const [mine] = await store.claim(claimOpts("r1", { max: 1 }));
    assert.is(mine!.id, job.id);
    const withProgress = await store.write(job.id, mine!.version, { progress: { rowsRead: 10, bytesRead: 20, totalRowsToRead: 30, elapsedMs: 40 } });
    assert.is(await store.expireLeases("r-nobody"), 0);
    assert.is(await store.expireLeases("r1"), 1);
    const taken = await store.claim(claimOpts("r2", { max: 5 }));
    assert.equal(idsOf(taken), [job.id, other.id], "the orphan first, then the queue");
    const again = taken[0]!;
    assert.equal(
      { ...again, updatedAt: 0 },
      { ...withProgress, status: JobStatus.RUNNING, attempt: 2, replica: "r2", version: withProgress.version + 1, progress: NO_PROGRESS, updatedAt: 0 },
    );
    assert.equal(await store.renewLeases("r1", 60_000), [], "r1 no longer holds it");
    assert.equal((await store.renewLeases("r2", 60_000)).sort(), [job.id, other.id].sort());
    const late = (await rejection(store.write(job.id, withProgress.version, { status: JobStatus.READING_RESULTS }), "the old replica's write")) as StaleStateError;
    assert.instance(late, StaleStateError);
    assert.is(late.current?.replica, "r2");
    assert.equal(await store.claim(claimOpts("r3")), [], "a taken-over job is not taken twice");
  });

  test("leases: a lease that runs out makes an orphan; a live lease is never taken", async (ctx) => {
    const store = await ctx.open();
    const short = await make(store);
    const long = await make(store);
    await store.claim(claimOpts("r1", { max: 1, leaseMs: 600 }));
    await store.claim(claimOpts("r1", { max: 1, leaseMs: 60_000 }));
    assert.equal(await store.claim(claimOpts("r2")), [], "leases still live");
    await sleep(800);
    const taken = await store.claim(claimOpts("r2"));
    assert.equal(idsOf(taken), [short.id]);
    assert.is(taken[0]!.attempt, 2);
    assert.is(taken[0]!.replica, "r2");
    assert.is((await mustGet(store, long.id)).replica, "r1");
  });

  test("leases: a READING_RESULTS orphan stays READING_RESULTS (progress kept) at attempt + 1", async (ctx) => {
    const store = await ctx.open();
    const job = await make(store);
    const [c] = await store.claim(claimOpts("r1"));
    const progress = { rowsRead: 100, bytesRead: 200, totalRowsToRead: 100, elapsedMs: 300 };
    const reading = await store.write(job.id, c!.version, { status: JobStatus.READING_RESULTS, progress, totalRows: 100, bytesProcessed: 200 });
    assert.is(await store.expireLeases(undefined), 1);
    const [again] = await store.claim(claimOpts("r2"));
    assert.equal({ ...again!, updatedAt: 0 }, { ...reading, attempt: 2, replica: "r2", version: reading.version + 1, updatedAt: 0 });
  });

  test("leases: at maxAttempts the orphan ends FAILED 'gave up after N attempts' and frees its path", async (ctx) => {
    const store = await ctx.open();
    const seen: JobSnapshot[] = [];
    const sub = store.changes.subscribe((s) => seen.push(s));
    try {
      const job = await make(store, { queryId: "q-doomed" });
      const opts = { maxAttempts: 2 };
      assert.is((await store.claim(claimOpts("r1", opts)))[0]?.attempt, 1);
      await store.expireLeases("r1");
      assert.is((await store.claim(claimOpts("r2", opts)))[0]?.attempt, 2);
      await store.expireLeases("r2");
      assert.equal(await store.claim(claimOpts("r3", opts)), [], "not run a third time");
      const failed = await mustGet(store, job.id);
      assert.is(failed.status, JobStatus.FAILED);
      assert.match(failed.error, /^gave up after 2 attempts/);
      assert.match(failed.error, "r2");
      assert.is(failed.attempt, 2);
      assert.is(failed.version, 4);
      assert.equal(seen.filter((s) => s.id === job.id).at(-1), failed, "the FAILED state is announced");
      assert.equal(await store.renewLeases("r2", 60_000), []);
      // Its export path is free: the next job of the key runs.
      const next = await make(store, { queryId: "q-doomed" });
      assert.equal(idsOf(await store.claim(claimOpts("r3", opts))), [next.id]);
    } finally {
      sub.unsubscribe();
    }
  });

  test("leases: renewLeases returns exactly the ids the replica holds", async (ctx) => {
    const store = await ctx.open();
    const j1 = await make(store);
    const j2 = await make(store);
    const j3 = await make(store);
    await store.claim(claimOpts("r1", { max: 2 }));
    await store.claim(claimOpts("r2", { max: 2 }));
    assert.equal((await store.renewLeases("r1", 60_000)).sort(), [j1.id, j2.id].sort());
    assert.equal(await store.renewLeases("r2", 60_000), [j3.id]);
    assert.equal(await store.renewLeases("r-none", 60_000), []);
    const c1 = await mustGet(store, j1.id);
    await store.write(j1.id, c1.version, { status: JobStatus.DONE }, { release: true });
    assert.equal(await store.renewLeases("r1", 60_000), [j2.id]);
    // Renewing keeps a short lease from running out.
    await store.renewLeases("r1", 50);
    await sleep(20);
    await store.renewLeases("r1", 60_000);
    await sleep(60);
    assert.equal(await store.claim(claimOpts("r3")), [], "renewed in time: not an orphan");
  });

  test("leases: a finished job whose owner died only has its owner cleared", async (ctx) => {
    const store = await ctx.open();
    const job = await make(store, { queryId: "q-k" });
    await store.claim(claimOpts("r1"));
    const cancelled = await store.requestCancel(job.id, "cancelled by the user");
    assert.is(cancelled?.status, JobStatus.CANCELLED);
    const next = await make(store, { queryId: "q-k" });
    assert.equal(await store.claim(claimOpts("r2")), [], "the cancelled export still holds the path");
    assert.is(await store.expireLeases("r1"), 1);
    assert.equal(idsOf(await store.claim(claimOpts("r2", { max: 1 }))), [next.id]);
    assert.equal(await store.get(job.id), cancelled, "unchanged: same version, status, attempt and replica");
    assert.equal(await store.renewLeases("r1", 60_000), []);
  });

  test("claims: the orphan search reads only owned jobs, however many finished ones the store holds, with no statistics", async (ctx) => {
    const store = await ctx.open();
    const raw = await ctx.backend.raw();
    try {
      // Finished jobs made with SQL, never ANALYZEd: PGlite runs no autovacuum, so its planner has no statistics.
      await seedFinishedJobs(raw, ctx.schema, { count: 20_000 });
      const running = await make(store);
      await store.claim(claimOpts("r1", { max: 1 }));
      // The orphan search of claim() (src/store/sql-job-store.ts), as it stands there.
      const plan = (
        await raw.query<Record<string, string>>(
          `EXPLAIN (ANALYZE, BUFFERS) SELECT id::text AS id, status, attempt, replica FROM ${quoteIdent(ctx.schema)}.jobs
           WHERE owner IS NOT NULL AND lease_until < clock_timestamp() ORDER BY seq LIMIT 8 FOR UPDATE SKIP LOCKED`,
        )
      ).map((r) => String(Object.values(r)[0]));
      const text = plan.join("\n");
      assert.match(text, /jobs_orphans|jobs_owned/, `an index of the owned jobs, not a walk through every job:\n${text}`);
      const buffers = plan.map((l) => /Buffers: shared (?:hit=(\d+))?\s*(?:read=(\d+))?/.exec(l)).find(Boolean);
      assert.ok(buffers && Number(buffers[1] ?? 0) + Number(buffers[2] ?? 0) < 20, `a few pages read:\n${text}`);
      await store.expireLeases("r1");
      assert.equal(idsOf(await store.claim(claimOpts("r2"))), [running.id], "the orphan is still found");
    } finally {
      await raw.close();
    }
  });

  test("requestCancel: PENDING and RUNNING end CANCELLED; a finished job is unchanged; unknown is undefined", async (ctx) => {
    const store = await ctx.open();
    const waiting = await make(store);
    const cancelledWaiting = await store.requestCancel(waiting.id, "cancelled by the user");
    assert.equal({ ...cancelledWaiting!, updatedAt: 0 }, { ...waiting, status: JobStatus.CANCELLED, error: "cancelled by the user", version: 2, updatedAt: 0 });
    assert.equal(await store.claim(claimOpts("r1")), [], "a cancelled job is not claimable");
    assert.is(await store.pendingCount(), 0);

    const running = await make(store);
    const [c] = await store.claim(claimOpts("r1"));
    assert.is(c!.id, running.id);
    const cancelledRunning = await store.requestCancel(running.id, "stop it");
    assert.is(cancelledRunning?.status, JobStatus.CANCELLED);
    assert.is(cancelledRunning?.error, "stop it");
    assert.is(cancelledRunning?.version, c!.version + 1);
    assert.is(cancelledRunning?.replica, "r1");
    assert.equal(await store.renewLeases("r1", 60_000), [running.id], "the replica still holds it until its export stops");

    const done = await make(store);
    const [d] = await store.claim(claimOpts("r1"));
    const finished = await store.write(done.id, d!.version, { status: JobStatus.DONE, resultUri: "s3://r/x.csv", resultSize: 10, totalRows: 1 }, { release: true });
    assert.equal(await store.requestCancel(done.id, "too late"), finished);
    assert.equal(await store.get(done.id), finished);
    assert.equal(await store.requestCancel(waiting.id, "twice"), cancelledWaiting, "a cancelled job keeps its first reason");
    assert.is(await store.requestCancel(randomUUID(), "nothing"), undefined);
  });

  test("retention: deleteExpired removes only finished, released jobs older than the retention, and counts them", async (ctx) => {
    const store = await ctx.open();
    const finish = async (status: JobStatus, release: boolean, over: Partial<NewJobRecord> = {}) => {
      const job = await make(store, over);
      const [c] = await store.claim(claimOpts("r1", { max: 1 }));
      assert.is(c!.id, job.id);
      return store.write(job.id, c!.version, { status }, { release });
    };
    const doneOld = await finish(JobStatus.DONE, true);
    const failedOld = await finish(JobStatus.FAILED, true);
    const cancelledPending = (await store.requestCancel((await make(store)).id, "x"))!;
    const unreleased = await finish(JobStatus.CANCELLED, false, { queryId: "q-held" }); // its export is still stopping
    const running = await make(store);
    await store.claim(claimOpts("r1", { max: 1 }));
    const pending = await make(store, { queryId: "q-held" }); // waits for `unreleased`: not claimed below
    // Margins of seconds, not milliseconds: the test must hold on a loaded machine too.
    await sleep(2500);
    const doneRecent = await finish(JobStatus.DONE, true);

    assert.is(await store.deleteExpired(2000), 3);
    for (const gone of [doneOld, failedOld, cancelledPending]) assert.is(await store.get(gone.id), undefined);
    for (const kept of [unreleased, running, pending, doneRecent]) assert.ok(await store.get(kept.id), `${kept.id} was deleted`);
    assert.is(await store.deleteExpired(2000), 0);
    await store.release(unreleased.id, "r1");
    assert.is(await store.deleteExpired(2000), 1, "released: now it goes");
    assert.is(await store.get(unreleased.id), undefined);
    assert.is(await store.deleteExpired(60_000), 0);
  });

  test("maintain: tidies the tables (VACUUM (ANALYZE) on PGlite, nothing on a server) and the store goes on as before", async (ctx) => {
    const store = await ctx.open();
    const jobs = [await make(store), await make(store)];
    await store.maintain();
    assert.equal(idsOf(await store.claim(claimOpts("r1", { max: 5 }))), jobs.map((j) => j.id));
    await store.maintain();
    assert.is((await mustGet(store, jobs[0]!.id)).status, JobStatus.RUNNING);
  });

  test("pageTokenKey: 32 bytes, the same on every call, different per store", async (ctx) => {
    const store = await ctx.open();
    const key = await store.pageTokenKey();
    assert.ok(Buffer.isBuffer(key));
    assert.is(key.length, 32);
    assert.equal(await store.pageTokenKey(), key);
    const [k1, k2] = await Promise.all([store.pageTokenKey(), store.pageTokenKey()]);
    assert.equal(k1, key);
    assert.equal(k2, key);
    await store.close();
    const elsewhere = await ctx.open(`${ctx.schema}_other`);
    assert.not.equal(await elsewhere.pageTokenKey(), key);
  });

  test("close and reopen keeps every job and the page-token key; migrating again is a no-op", async (ctx) => {
    const store = await ctx.open();
    const a = await make(store, { requestId: "req-keep", requestHash: "h" });
    const b = await make(store);
    const [ca] = await store.claim(claimOpts("r1", { max: 1 }));
    const aDone = await store.write(a.id, ca!.version, { status: JobStatus.DONE, resultUri: "s3://r/a.csv", resultSize: 123, totalRows: 0 }, { release: true });
    const key = await store.pageTokenKey();
    const before = await store.list({ reportId: undefined, limit: 100, after: undefined });
    await store.close();

    const raw = await ctx.backend.raw();
    try {
      assert.equal(await migrate(raw, ctx.schema), [], "nothing left to apply");
      const rows = await raw.query<{ version: number }>(`SELECT version FROM ${quoteIdent(ctx.schema)}.schema_migrations ORDER BY version`);
      assert.equal(rows.map((r) => Number(r.version)), MIGRATIONS.map((m) => m.version), "every migration once, up to LATEST_VERSION");
      assert.is(Number(rows.at(-1)?.version), LATEST_VERSION);
    } finally {
      await raw.close();
    }

    const reopened = await ctx.openFresh();
    assert.equal(await reopened.list({ reportId: undefined, limit: 100, after: undefined }), before);
    assert.equal(await reopened.get(a.id), aDone);
    assert.is((await reopened.get(b.id))?.status, JobStatus.PENDING);
    assert.equal(await reopened.pageTokenKey(), key);
    assert.is((await reopened.create(rec({ requestId: "req-keep", requestHash: "h" }), 1000)).kind, "existing");
    assert.equal(idsOf(await reopened.claim(claimOpts("r2"))), [b.id], "the queue survives");
  });

  test("a schema migrated by newer code is refused, saying so", async (ctx) => {
    await (await ctx.open()).close();
    const raw = await ctx.backend.raw();
    try {
      await raw.query(`INSERT INTO ${quoteIdent(ctx.schema)}.schema_migrations (version, name) VALUES (999, 'from the future')`);
    } finally {
      await raw.close();
    }
    const err = await rejection(ctx.openFresh(), "opening a schema at version 999");
    assert.match(err.message, /newer/);
    assert.match(err.message, "999");
    assert.match(err.message, ctx.schema);
  });

  extra?.(test);
  cases.run();
}

// ---------------------------------------------------------------- PGlite

// Before any suite is registered: uvu starts running on the first timer tick, and
// an await between registrations would let it start with half the suites.
const pgReachable = await canConnect(PG.host, PG.port, 1000);
const onCI = process.env.CI === "true";

const pgliteRoot = mkdtempSync(join(tmpdir(), "chjob-store-test-"));
const pgliteDir = join(pgliteRoot, "jobs");

contract(
  "PGlite",
  async () => {
    // One PGlite instance for the suite (its first open runs initdb: seconds); each case a schema on it.
    let shared: SqlClient | undefined;
    const instance = async () => (shared ??= await openPGlite(pgliteDir));
    const closeInstance = async () => {
      const db = shared;
      shared = undefined;
      await db?.close();
    };
    return {
      open: async (schema) => {
        const db = await instance();
        await migrate(db, schema);
        return new SqlJobStore(unclosable(db), { schema });
      },
      openFresh: async (schema) => {
        await closeInstance();
        return openStore({ kind: "pglite", directory: pgliteDir, schema });
      },
      raw: async () => unclosable(await instance()),
      schemaPrefix: "contract",
      cleanup: async () => {
        await closeInstance();
        rmSync(pgliteRoot, { recursive: true, force: true });
      },
    };
  },
  { concurrent: false, extra: (test) => {
    test("directory lock: a second open while the first is open fails naming the directory and this pid; after close it opens", async (ctx) => {
      const first = await ctx.openFresh();
      const job = await make(first);
      const err = await rejection(ctx.openFresh(), "a second open of one PGlite directory");
      assert.match(err.message, pgliteDir);
      assert.match(err.message, `process ${process.pid}`);
      // The refused open took nothing from the first.
      assert.is(readFileSync(`${pgliteDir}.lock`, "utf8").trim(), String(process.pid));
      assert.equal(await first.get(job.id), job);
      await first.close();
      assert.not.ok(existsSync(`${pgliteDir}.lock`), "close releases the lock");
      const again = await ctx.openFresh();
      assert.equal(await again.get(job.id), job);
    });

    test("directory lock: a lock file left by a dead process does not block", async (ctx) => {
      const pid = await deadPid();
      writeFileSync(`${pgliteDir}.lock`, `${pid}\n`);
      const store = await ctx.openFresh();
      assert.is(readFileSync(`${pgliteDir}.lock`, "utf8").trim(), String(process.pid));
      await make(store);
      await store.close();
      assert.not.ok(existsSync(`${pgliteDir}.lock`));
      // Nor does one naming this pid that no open store of this process holds (a restarted container's pid 1).
      writeFileSync(`${pgliteDir}.lock`, `${process.pid}\n`);
      await (await ctx.openFresh()).close();
    });

    test("directory lock: a lock held by another live process blocks, naming it", async (ctx) => {
      const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
      try {
        await new Promise((r) => holder.once("spawn", r));
        writeFileSync(`${pgliteDir}.lock`, `${holder.pid}\n`);
        const err = await rejection(ctx.openFresh(), "an open of a directory another process holds");
        assert.match(err.message, `process ${holder.pid}`);
        assert.match(err.message, pgliteDir);
        assert.is(readFileSync(`${pgliteDir}.lock`, "utf8").trim(), String(holder.pid), "the holder's lock is left alone");
      } finally {
        holder.kill();
        rmSync(`${pgliteDir}.lock`, { force: true });
      }
    });
  },
  },
);

// ---------------------------------------------------------------- PostgreSQL

if (!pgReachable && onCI) {
  const test = suite("JobStore contract: PostgreSQL");
  test("PostgreSQL is reachable (required when CI=true)", () => {
    assert.unreachable(PG_MISSING);
  });
  test.run();
} else {
  if (!pgReachable) console.log(`\n  skipping the JobStore contract on PostgreSQL: ${PG_MISSING}\n`);
  const prefix = `chjob_test_${process.pid}_${randomBytes(4).toString("hex")}`;
  const open = (schema: string) => openStore({ kind: "postgres", url: PG_URL, ...PG, schema, source: "CHJOB_DATABASE_URL" }, { maxConnections: 4 });
  contract(
    "PostgreSQL",
    async () => ({
      // Every store its own pool, as every replica has.
      open,
      openFresh: open,
      raw: async () => openPostgres({ url: PG_URL, description: "test", maxConnections: 1 }),
      schemaPrefix: prefix,
      cleanup: async () => {
        const db = openPostgres({ url: PG_URL, description: "test", maxConnections: 1 });
        try {
          const schemas = await db.query<{ name: string }>("SELECT nspname AS name FROM pg_namespace WHERE starts_with(nspname, $1)", [prefix]);
          for (const { name } of schemas) await db.query(`DROP SCHEMA ${quoteIdent(name)} CASCADE`);
          const left = await db.query("SELECT 1 FROM pg_namespace WHERE starts_with(nspname, $1)", [prefix]);
          if (left.length) throw new Error(`schemas ${prefix}* are still there`);
        } finally {
          await db.close();
        }
      },
    }),
    { concurrent: true, skip: pgReachable ? undefined : PG_MISSING },
  );
}

// ---------------------------------------------------------------- PostgreSQL unreachable (no server needed)

const unreachable = suite("JobStore: PostgreSQL unreachable");

unreachable("openStore on a closed port names host, port and database, never the password", async () => {
  const err = await rejection(
    openStore({
      kind: "postgres",
      url: "postgres://chjob:sekret@127.0.0.1:1/jobsdb",
      host: "127.0.0.1",
      port: 1,
      database: "jobsdb",
      user: "chjob",
      schema: "chjob",
      source: "CHJOB_DATABASE_URL",
    }),
    "a store on a closed port",
  );
  assert.match(err.message, "127.0.0.1:1");
  assert.match(err.message, "jobsdb");
  assert.match(err.message, "CHJOB_DATABASE_URL");
  assert.not.match(err.message, "sekret");
  assert.not.match(String(err.stack), "sekret");
});

unreachable.run();
