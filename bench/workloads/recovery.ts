// 8. Recovery: how soon the service is whole again after a crash.
//
// Take-over (PostgreSQL): two replicas (bench-a, bench-b) on one schema sharing one S3
// server (bench/replica-set.ts), with CHJOB_LEASE 3 s and then the default 15 s. Each round
// creates a slow job (one row every 0.5 s: `sleepEachRow`, one row per block), watched on
// both replicas; once it is RUNNING, and a varying part of a lease renewal later, the bench
// SIGKILLs the replica that runs it (Job.replica). Adoption time = kill → the survivor's
// watcher receiving RUNNING with attempt 2 (and, from the store, kill → the job_states row of
// attempt 2: the database's clock, whose offset against the bench's is measured). The lease
// the store held at the kill tells how much of that is waiting for the lease to run out and
// how much is the survivor noticing (its claim poll, once a second). The job is then
// cancelled, and the killed replica started again (same name) for the next round. Bar:
// adoption within the lease plus 2 s.
//
// Restart (PGlite): a single embedded service (chDB, embedded S3, PGlite job store) on a
// data directory holding 100,000 finished jobs (made with SQL, each with its four states in
// the history: bench/seed-jobs.ts), beside one on a directory holding one job (the
// "floor" column: what a restart costs with no jobs to speak of). Both directories were
// served once before (a real job ran) and stopped, so each start is a restart. Rounds
// alternate the two. Measured from the spawn of `chjob serve`: its health check answering
// SERVING (asked every 10 ms), and the first ListJobs answered; then ListJobs latency as a
// client sees it: the first page (default size 50, and 100), a report's first page, and a
// page 20 pages deep (its page_token). Bars: serving within 3 s; the first page within 20 ms.
import { performance } from "node:perf_hooks";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobStatus, type Job } from "../../gen/chjob/v1/job_service_pb.js";
import type { JobClient } from "../../src/client.js";
import { openPGlite } from "../../src/store/pglite.js";
import { seedJobStore } from "../../test/support/pglite-template.js";
import { benchDatabaseUrl, logSummary, replicaEnv, startSharedS3, type Replica } from "../replica-set.js";
import type { S3Process } from "../s3-server.js";
import { seedFinishedJobs } from "../seed-jobs.js";
import { mustBeDone, serviceJob, startBenchService, TERMINAL, type BenchService } from "../service.js";
import { median, percentile } from "../stats.js";
import { BenchDatabase } from "../store-stats.js";
import { fmt, settleDisk, type BenchContext, type Row, type Workload } from "../workload.js";

const TITLE =
  "Recovery: SIGKILL of the replica running a job → another replica runs it (2 replicas on PostgreSQL, CHJOB_LEASE 3 s and 15 s); restart of an embedded service (PGlite) on 100,000 finished jobs → SERVING, and ListJobs latency there";
const LEASES_MS = [3_000, 15_000];
const SLOW_QUERY = "SELECT number, sleepEachRow(0.5) FROM numbers(600) SETTINGS max_block_size = 1";
const STORED_JOBS = 100_000;
const LIST_CALLS = 200;
const DEEP_PAGES = 20;
const NAMES = ["bench-a", "bench-b"] as const;

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const spread = (xs: number[]) => `p50 ${fmt(median(xs))} / max ${fmt(Math.max(...xs))} ms`;

export const recovery: Workload = {
  name: "recovery",
  title: TITLE,
  defaultRounds: 3,
  async run(ctx) {
    const rows: Row[] = [];
    const details: Record<string, unknown> = {};
    const db = await BenchDatabase.connect(benchDatabaseUrl());
    if (typeof db === "string") {
      ctx.say(`  take-over skipped: no PostgreSQL (${db}); set BENCH_DATABASE_URL`);
      rows.push({ metric: "take-over: skipped, no PostgreSQL server (BENCH_DATABASE_URL)", unit: "", service: db, floor: "", compare: "", bar: "", met: undefined });
    } else {
      try {
        for (const leaseMs of LEASES_MS) {
          const t = await takeOver(ctx, db, leaseMs);
          details[`takeOver${leaseMs / 1000}s`] = t;
          rows.push(...takeOverRows(leaseMs, t));
        }
      } finally {
        await db.close();
      }
    }
    const r = await restart(ctx);
    details.restart = r;
    rows.push(...restartRows(r));
    return { name: "recovery", title: TITLE, rows, details };
  },
};

// --- take-over -----------------------------------------------------------------------------

interface Kill {
  job: string;
  killed: string;
  survivor: string;
  /** Kill → the survivor's watcher receives RUNNING of attempt 2, ms. */
  watchMs: number;
  /** Kill → the store's write of attempt 2 (job_states: the database's clock, corrected by its offset), ms. */
  storeMs: number;
  /** The lease left at the kill (lease_until − kill), ms. */
  leaseLeftMs: number;
  /** How the survivor's watcher saw the job: status/attempt/replica, in order. */
  seen: string[];
}

interface TakeOver {
  leaseMs: number;
  kills: Kill[];
  clockOffsetMs: number;
  replicaLog: Record<string, number>;
}

/** Watches a job on a replica; resolves `adopted` when it sees RUNNING with attempt ≥ 2 (receive time), `running` at its first RUNNING. */
function watchAdoption(client: JobClient) {
  const seen: string[] = [];
  let onRunning: (job: Job) => void = () => undefined;
  let onAdopted: (at: number) => void = () => undefined;
  const running = new Promise<Job>((r) => (onRunning = r));
  const adopted = new Promise<number>((r) => (onAdopted = r));
  return {
    seen,
    running,
    adopted,
    start(id: string) {
      const { states, call } = client.watchJob(id);
      const done = (async () => {
        try {
          for await (const job of states) {
            const at = now();
            const label = `${JobStatus[job.status]}/${job.attempt}/${job.replica}`;
            if (seen.at(-1) !== label) seen.push(label);
            if (job.status === JobStatus.RUNNING) onRunning(job);
            if (job.status === JobStatus.RUNNING && job.attempt >= 2) onAdopted(at);
            if (TERMINAL.has(job.status)) return job;
          }
        } catch {
          // the stream of a killed replica breaks
        }
        return undefined;
      })();
      return { done, cancel: () => call.cancel() };
    },
  };
}

async function takeOver(ctx: BenchContext, db: BenchDatabase, leaseMs: number): Promise<TakeOver> {
  const schema = db.freshSchema();
  ctx.say(`  take-over, CHJOB_LEASE ${leaseMs / 1000} s: PostgreSQL ${db.description}, schema ${schema}`);
  let s3: S3Process | undefined;
  const live: Array<Replica | undefined> = [undefined, undefined];
  const started: Replica[] = [];
  const kills: Kill[] = [];
  const out: TakeOver = { leaseMs, kills, clockOffsetMs: NaN, replicaLog: {} };
  try {
    s3 = await startSharedS3();
    const start = async (i: number) => {
      const name = NAMES[i]!;
      const env = { ...replicaEnv(ctx.service.env, { url: db.url, schema, name, slots: 8, s3Endpoint: s3!.endpoint }), CHJOB_LEASE: `${leaseMs}ms` };
      const svc = await startBenchService({ ...ctx.service, env, keepLog: true });
      live[i] = { name, svc };
      started.push(live[i]!);
      mustBeDone(await serviceJob(svc.client, { reportId: "warm", queryId: `w-${name}-${started.length}`, sql: "SELECT 1" }));
    };
    await start(0);
    await start(1);
    out.clockOffsetMs = (await db.clockOffset()).offsetMs;
    for (let k = 0; k < ctx.rounds; k++) {
      const creator = live[k % 2]!;
      const job = await creator.svc.client.createJob({ reportId: "recovery", queryId: `k${k}`, queryText: SLOW_QUERY });
      const watchers = live.map((r) => ({ r: r!, w: watchAdoption(r!.svc.client) }));
      const streams = watchers.map(({ w }) => w.start(job.id));
      const first = await Promise.race(watchers.map(({ w }) => w.running));
      const victim = live.findIndex((r) => r!.name === first.replica);
      if (victim < 0) throw new Error(`job ${job.id} runs on ${first.replica}, not a replica of this bench`);
      const survivor = live[1 - victim]!;
      // Kill at a different point of the lease renewal cycle (every lease / 3) each round.
      await sleep(500 + ((k + 0.5) / ctx.rounds) * (leaseMs / 3));
      const [row] = await db.runner().query<{ ms: number }>(
        `SELECT (extract(epoch FROM lease_until) * 1000)::float8 AS ms FROM "${schema}".jobs WHERE id = $1::uuid`,
        [job.id],
      );
      const leaseUntil = (row?.ms ?? NaN) - out.clockOffsetMs;
      const killedAt = now();
      await live[victim]!.svc.kill();
      const w = watchers[1 - victim]!.w;
      const adoptedAt = await Promise.race([w.adopted, sleep(leaseMs + 30_000).then(() => NaN)]);
      const history = await db.runner().query<{ ms: number }>(
        `SELECT (extract(epoch FROM (state->>'updated_at')::timestamptz) * 1000)::float8 AS ms FROM "${schema}".job_states
         WHERE job_id = $1::uuid AND (state->>'attempt')::int = 2 ORDER BY version LIMIT 1`,
        [job.id],
      );
      const kill: Kill = {
        job: job.id,
        killed: live[victim]!.name,
        survivor: survivor.name,
        watchMs: adoptedAt - killedAt,
        storeMs: (history[0]?.ms ?? NaN) - out.clockOffsetMs - killedAt,
        leaseLeftMs: leaseUntil - killedAt,
        seen: w.seen,
      };
      kills.push(kill);
      ctx.say(
        `  round ${k + 1}: killed ${kill.killed} with ${fmt(kill.leaseLeftMs, 0)} ms of lease left; ${survivor.name} ran it again after ${fmt(kill.watchMs, 0)} ms (watcher; store ${fmt(kill.storeMs, 0)} ms); its watcher saw ${kill.seen.join(" → ")}`,
      );
      await survivor.svc.client.cancelJob(job.id).catch(() => undefined);
      await Promise.race([streams[1 - victim]!.done, sleep(30_000)]);
      streams.forEach((s) => s.cancel());
      live[victim] = undefined;
      await start(victim);
    }
  } finally {
    await Promise.allSettled(live.map((r) => r?.svc.stop()));
    out.replicaLog = logSummary(started).messages;
    if (Object.keys(out.replicaLog).length) ctx.say(`  the replicas logged: ${Object.entries(out.replicaLog).map(([m, n]) => `${n} × ${m}`).join("; ")}`);
    await s3?.stop();
    await db.dropSchema(schema).catch((err: Error) => ctx.say(`  could not drop schema ${schema}: ${err.message}`));
  }
  return out;
}

function takeOverRows(leaseMs: number, t: TakeOver): Row[] {
  const watch = t.kills.map((k) => k.watchMs);
  const after = t.kills.map((k) => k.watchMs - k.leaseLeftMs);
  const bar = leaseMs + 2000;
  const worst = Math.max(...watch);
  return [
    {
      metric: `take-over, CHJOB_LEASE ${leaseMs / 1000} s: SIGKILL of the running replica → RUNNING attempt 2 on the other, seen by its watcher (median; floor column: max) of ${t.kills.length}`,
      unit: "ms",
      service: median(watch),
      floor: worst,
      compare: `after the lease ran out: ${spread(after)}; store write: ${spread(t.kills.map((k) => k.storeMs))}`,
      bar: `≤ lease + 2 s (${bar} ms)`,
      met: Number.isFinite(worst) && worst <= bar,
    },
  ];
}

// --- restart -------------------------------------------------------------------------------

interface Start {
  jobs: number;
  round: number;
  /** Spawn → health SERVING, ms. */
  servingMs: number;
  /** Spawn → the first ListJobs answered, ms. */
  firstListMs: number;
  /** ListJobs round trips, ms, by shape. */
  list: Record<string, number[]>;
}

interface Restart {
  storedJobs: number;
  seedMs: number;
  starts: Start[];
}

async function restart(ctx: BenchContext): Promise<Restart> {
  const root = mkdtempSync(join(tmpdir(), "chjob-bench-recovery-"));
  const dirs = { small: join(root, "one-job"), big: join(root, "many-jobs") };
  const out: Restart = { storedJobs: STORED_JOBS, seedMs: NaN, starts: [] };
  const env = (dir: string) => ({ ...ctx.service.env, CHJOB_DATA_DIR: dir });
  const opts = (dir: string) => ({ ...ctx.service, env: env(dir), readyPollMs: 10 });
  try {
    // Each directory is served once (a real job runs: chDB, S3 and the store all have data), then stopped.
    for (const dir of Object.values(dirs)) {
      await seedJobStore(dir);
      const svc = await startBenchService(opts(dir));
      mustBeDone(await serviceJob(svc.client, { reportId: "first", queryId: "run", sql: "SELECT 1" }));
      await svc.stop();
    }
    const db = await openPGlite(join(dirs.big, "jobs"));
    try {
      out.seedMs = await seedFinishedJobs(db, "chjob", { count: STORED_JOBS, history: true });
    } finally {
      await db.close();
    }
    // The seeding's writes (over 1 GB with the history) reach the disk before any start is timed.
    await settleDisk();
    ctx.say(`  restart: ${STORED_JOBS} finished jobs (and their 4 states each) written to ${dirs.big} in ${fmt(out.seedMs / 1000)} s`);
    for (let r = 0; r < ctx.rounds; r++) {
      const order = r % 2 === 0 ? [dirs.big, dirs.small] : [dirs.small, dirs.big];
      for (const dir of order) {
        await settleDisk();
        const s = await startAndList(dir === dirs.big ? STORED_JOBS + 1 : 1, r, opts(dir));
        out.starts.push(s);
        ctx.say(
          `  round ${r + 1}, ${s.jobs} jobs: SERVING ${fmt(s.servingMs, 0)} ms, first ListJobs answered ${fmt(s.firstListMs, 0)} ms after the spawn; ListJobs ` +
            Object.entries(s.list)
              .map(([k, xs]) => `${k} p50 ${fmt(median(xs))} / p99 ${fmt(percentile(xs, 99))} ms`)
              .join(", "),
        );
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return out;
}

async function startAndList(jobs: number, round: number, opts: Parameters<typeof startBenchService>[0]): Promise<Start> {
  const spawned = performance.now();
  const svc: BenchService = await startBenchService(opts);
  // startMs counts from the spawn; the bench's own set-up before it (a temp dir) is not counted.
  const setup = performance.now() - spawned - svc.startMs;
  let firstListMs = NaN;
  for (;;) {
    const ok = await svc.client.listJobs({}).then(
      () => true,
      () => false,
    );
    if (ok) {
      firstListMs = performance.now() - spawned - setup;
      break;
    }
    if (performance.now() - spawned > 60_000) throw new Error("ListJobs did not answer within 60 s of the spawn");
  }
  const s: Start = { jobs, round, servingMs: svc.startMs, firstListMs, list: {} };
  try {
    const time = async (name: string, req: Parameters<JobClient["listJobs"]>[0]) => {
      const xs: number[] = [];
      for (let i = 0; i < LIST_CALLS; i++) {
        const t0 = performance.now();
        await svc.client.listJobs(req);
        xs.push(performance.now() - t0);
      }
      s.list[name] = xs;
    };
    await time("first page (50)", {});
    await time("first page (100)", { pageSize: 100 });
    await time("a report's first page", { reportId: jobs > 1 ? "r7" : "first" });
    let token = "";
    for (let p = 0; p < DEEP_PAGES; p++) {
      const page = await svc.client.listJobs({ pageToken: token });
      if (!page.nextPageToken) break;
      token = page.nextPageToken;
    }
    await time(`page ${DEEP_PAGES + 1}`, { pageToken: token });
  } finally {
    await svc.stop();
  }
  return s;
}

function restartRows(r: Restart): Row[] {
  const big = r.starts.filter((s) => s.jobs > 1);
  const small = r.starts.filter((s) => s.jobs === 1);
  const all = (xs: Start[], k: string) => xs.flatMap((s) => s.list[k] ?? []);
  const rows: Row[] = [
    {
      metric: `restart, embedded (PGlite) on ${r.storedJobs.toLocaleString("en")} finished jobs: spawn → health SERVING (median of ${big.length}; floor column: a directory with 1 job)`,
      unit: "ms",
      service: median(big.map((s) => s.servingMs)),
      floor: median(small.map((s) => s.servingMs)),
      compare: `max ${fmt(Math.max(...big.map((s) => s.servingMs)), 0)} ms vs ${fmt(Math.max(...small.map((s) => s.servingMs)), 0)} ms`,
      bar: "≤ 3000 ms",
      met: Math.max(...big.map((s) => s.servingMs)) <= 3000,
    },
    {
      metric: "restart: spawn → first ListJobs answered (median)",
      unit: "ms",
      service: median(big.map((s) => s.firstListMs)),
      floor: median(small.map((s) => s.firstListMs)),
      compare: "",
      bar: "",
      met: undefined,
    },
  ];
  for (const k of Object.keys(big[0]?.list ?? {})) {
    const xs = all(big, k);
    const fs = all(small, k);
    rows.push({
      metric: `ListJobs on ${r.storedJobs.toLocaleString("en")} jobs (PGlite), ${k}: p50 (p99 in compare; floor column: 1 job) of ${xs.length}`,
      unit: "ms",
      service: median(xs),
      floor: median(fs),
      compare: `p99 ${fmt(percentile(xs, 99))} ms vs ${fmt(percentile(fs, 99))} ms`,
      bar: k === "first page (50)" ? "≤ 20 ms" : "",
      met: k === "first page (50)" ? median(xs) <= 20 : undefined,
    });
  }
  return rows;
}
