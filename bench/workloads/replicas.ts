// 7. Several replicas on one PostgreSQL job store, sharing one S3 server (as
// test/replicas.test.ts runs them): each replica is a real `chjob serve` with its
// own chDB data directory, CHJOB_REPLICA_ID bench-a, bench-b, bench-c.
//
// Status latency across replicas: small jobs created one at a time on replica A,
// each watched at once on A and on B. For every status change a watcher receives
// (after its first message, the state it joined at), latency = receive time − the
// job's updated_at at that write (the database's clock_timestamp(), read to the
// microsecond from the job's history afterwards; Job.updated_at carries whole
// milliseconds). Same machine, same clock: the bench prints the server's offset
// against its own. A status counts as "other replica" when the watcher is not on
// the replica that wrote it (the runner, Job.replica: a NOTIFY, then a re-read of
// the job there) and as "writing replica" when it is (no NOTIFY hop). Which
// replica runs a job is the shared queue's choice, so both watchers give figures
// of both kinds.
//
// Throughput with N replicas: a burst of small jobs created at once, round-robin
// on 1, 2 and 3 replicas (CHJOB_MAX_CONCURRENT_JOBS=8 each), each watched on the
// replica it was created on until DONE: jobs/s from the first CreateJob to the
// last DONE, CPU per job (the replica processes, the PostgreSQL backends that
// serve them, the S3 server), the time a job waits, exports and copies, and the
// rows written per job to the job tables (pg_stat_user_tables of jobs and
// job_states, read once the backends' counters have settled). The S3 server runs
// in a process of its own (bench/s3-server.ts), not in the bench's event loop.
//
// Rounds go 1 → 2 → 3 replicas, then 3 → 2 → 1 (stopping replicas with SIGTERM),
// and so on; a replica (re)started runs a few warm-up jobs before anything is
// measured. The latency jobs run while two replicas are up.
//
// PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
// the bench makes schema chjob_bench_<pid>_<random> there and drops it at the end.
import { setMaxListeners } from "node:events";
import { performance } from "node:perf_hooks";
import { JobStatus, type Job } from "../../gen/chjob/v1/job_service_pb.js";
import type { JobClient } from "../../src/client.js";
import { cpuMsOf, cpuWindow } from "../cpu.js";
import { S3_KEY_ID, S3_SECRET } from "../protocol.js";
import { objectExists, s3Client } from "../../test/support/s3.js";
import { onReplicaSet, REPLICA_NAMES, type Replica, type ReplicaSet } from "../replica-set.js";
import { noStatusSkipped, startBenchService, TERMINAL } from "../service.js";
import { median, percentile } from "../stats.js";
import { JOB_TABLES, minus, plus, rowWrites, zeroCounts, type RowCounts } from "../store-stats.js";
import { diff, fmt, type BenchContext, type Row, type Workload, type WorkloadResult } from "../workload.js";

const BURST = 500;
const SLOTS = 8;
/** Latency jobs over the whole run (at least LATENCY_MIN_PER_ROUND per round). */
const LATENCY_JOBS = 500;
const LATENCY_MIN_PER_ROUND = 250;
/** Cross-replica status changes the latency figures should rest on. */
const LATENCY_MIN_SAMPLES = 1000;
/** Warm-up jobs on each replica (re)started, before anything is measured. */
const WARMUP = 8;
/** A watch still open this long after its burst began has lost its job: it is cut and counted. */
const WATCH_DEADLINE_MS = 120_000;
/** In a burst, no job ending for this long ends the CPU count: the ones left may be stuck. */
const STALL_MS = 10_000;
/**
 * ...and no job ending for this long means they are: their watches are cut. Longer than a
 * take-over needs (CHJOB_LEASE, 15 s by default, then the next claim).
 */
const STUCK_MS = 45_000;
const TITLE = `Replicas on one PostgreSQL: status latency across replicas (SELECT 1, one at a time); ${BURST} SELECT 1 jobs at once round-robin on 1, 2, 3 replicas (${SLOTS} slots each)`;

/** One status change as a watcher received it. */
interface Stamp {
  id: string;
  status: JobStatus;
  /** Receive time, ms since the epoch (performance.timeOrigin + performance.now(): sub-millisecond). */
  at: number;
  /** The message's updated_at (ms, rounded): used when the job's history does not have the write. */
  updatedMs: number;
  /** The watcher is on the replica that wrote this state. */
  local: boolean;
}

interface Watched {
  /** Status changes after the watcher's first message. */
  stamps: Stamp[];
  /** Statuses as the watcher saw them, repeats folded. */
  statuses: JobStatus[];
  final: Job | undefined;
  /** performance.now() when the terminal state arrived. */
  endAt: number;
  /** Why the watch ended without a terminal state (cut at its deadline, or broken). */
  error: string | undefined;
}

const now = () => performance.timeOrigin + performance.now();
const updatedMs = (job: Job) => Number(job.updatedAt?.seconds ?? 0n) * 1000 + Math.floor((job.updatedAt?.nanos ?? 0) / 1e6 + 0.5);

/**
 * Watches a job to its end on `client` (replica `watcher`); each status change after the first
 * message is stamped. PENDING is written by the replica that created the job (`creator`),
 * every later status by the replica that runs it (Job.replica). A watch cut (`cut`, or still
 * open after WATCH_DEADLINE_MS) comes back with no final state.
 */
async function watchStamped(
  client: JobClient,
  id: string,
  watcher: string,
  creator: string,
  onTerminal: () => void = () => undefined,
  cut?: AbortSignal,
): Promise<Watched> {
  const w: Watched = { stamps: [], statuses: [], final: undefined, endAt: NaN, error: undefined };
  const { states, call } = client.watchJob(id);
  const timer = setTimeout(() => call.cancel(), WATCH_DEADLINE_MS);
  const onCut = () => call.cancel();
  cut?.addEventListener("abort", onCut);
  try {
    for await (const job of states) {
      const at = now();
      const first = w.statuses.length === 0;
      if (w.statuses.at(-1) !== job.status) {
        w.statuses.push(job.status);
        if (!first) {
          const writer = job.status === JobStatus.PENDING ? creator : job.replica;
          w.stamps.push({ id, status: job.status, at, updatedMs: updatedMs(job), local: writer === watcher });
        }
      }
      if (TERMINAL.has(job.status)) {
        w.final = job;
        w.endAt = performance.now();
        onTerminal();
      }
    }
  } catch (err) {
    w.error = String((err as Error)?.message ?? err);
  } finally {
    clearTimeout(timer);
    cut?.removeEventListener("abort", onCut);
  }
  return w;
}

/** Status latencies (receive − updated_at from the job's history), ms, by kind and by status. */
interface Latencies {
  remote: number[];
  local: number[];
  /** `remote RUNNING`, `local DONE`, ...: the same split by status. */
  byStatus: Record<string, number[]>;
  /** Stamps whose write the history did not have (their message's rounded updated_at was used). */
  unmatched: number;
}

function latencies(stamps: Stamp[], times: Map<string, number>): Latencies {
  const out: Latencies = { remote: [], local: [], byStatus: {}, unmatched: 0 };
  for (const s of stamps) {
    const written = times.get(`${s.id}:${s.status}`);
    if (written === undefined) out.unmatched++;
    const ms = s.at - (written ?? s.updatedMs);
    (s.local ? out.local : out.remote).push(ms);
    (out.byStatus[`${s.local ? "local" : "remote"} ${JobStatus[s.status]}`] ??= []).push(ms);
  }
  return out;
}

const spread = (xs: number[]) => `p50 ${fmt(median(xs))} / p99 ${fmt(percentile(xs, 99))} / max ${fmt(Math.max(...xs))} ms`;

/** p50 of each phase of the jobs, ms, from their history: waiting (PENDING → RUNNING), export, copy. */
function phases(ids: string[], times: Map<string, number>): { queue: number; export: number; copy: number } {
  const gap = (id: string, from: JobStatus, to: JobStatus) => (times.get(`${id}:${to}`) ?? NaN) - (times.get(`${id}:${from}`) ?? NaN);
  const p50 = (from: JobStatus, to: JobStatus) => median(ids.map((id) => gap(id, from, to)).filter(Number.isFinite));
  return {
    queue: p50(JobStatus.PENDING, JobStatus.RUNNING),
    export: p50(JobStatus.RUNNING, JobStatus.READING_RESULTS),
    copy: p50(JobStatus.READING_RESULTS, JobStatus.DONE),
  };
}

interface Burst {
  round: number;
  replicas: number;
  /** First CreateJob sent → last DONE received, ms. */
  wallMs: number;
  /**
   * CPU per job, ms, from the first CreateJob until the last terminal state (or, with a job
   * stuck, until none had arrived for STALL_MS): the replica processes (all threads), their
   * PostgreSQL backends, the S3 server, this bench (its gRPC client).
   */
  cpu: { replicas: number; backends: number; s3: number; bench: number; lostBackends: number; stalled: boolean };
  rows: RowCounts;
  settled: boolean;
  /** Versioned UPDATEs per job (mean `version` − 1: status and progress writes); the other updates are leases. */
  versionedUpdates: number;
  /** Jobs run, by replica. */
  ranOn: Record<string, number>;
  latency: Latencies;
  /** p50 per job, ms: PENDING → RUNNING, export, copy. */
  phases: { queue: number; export: number; copy: number };
  notDone: number;
  /** DONE jobs whose result object is not there (HeadObject after the burst). */
  missingResults: string[];
  noTerminal: number;
  skipped: number;
  /** Jobs whose watch ended with no terminal state, as the store has them. */
  lostJobs: Array<Record<string, unknown>>;
}

interface LatencyWrites {
  round: number;
  jobs: number;
  rows: RowCounts;
  settled: boolean;
  versionedUpdates: number;
}

interface LatencyRound {
  round: number;
  jobs: number;
  latency: Latencies;
  phases: { queue: number; export: number; copy: number };
  ranOn: Record<string, number>;
  notDone: number;
  missingResults: string[];
  skipped: number;
}

export const replicas: Workload = {
  name: "replicas",
  title: TITLE,
  defaultRounds: 2,
  run(ctx) {
    return onReplicaSet(ctx, { name: "replicas", title: TITLE }, (set) => measure(ctx, set));
  },
};

async function measure(ctx: BenchContext, { db, schema, s3, live, started, env: envOf }: ReplicaSet): Promise<WorkloadResult> {
  const env = (name: string) => envOf(name, SLOTS);
  let warmups = 0;
  const startReplica = async (i: number) => {
    const name = REPLICA_NAMES[i]!;
    const svc = await startBenchService({ ...ctx.service, env: env(name), keepLog: true });
    live[i] = { name, svc };
    started.push(live[i]!);
    // Warm-up: its engine's first exports, its first S3 and store connections.
    const ends = await Promise.all(
      Array.from({ length: WARMUP }, async (_, k) => {
        const job = await svc.client.createJob({ reportId: "warm", queryId: `w${warmups++}-${k}`, queryText: "SELECT 1" });
        return (await watchStamped(svc.client, job.id, name, name)).final;
      }),
    );
    const bad = ends.find((j) => j?.status !== JobStatus.DONE);
    if (bad !== undefined) throw new Error(`warm-up on ${name}: a job ended ${bad ? `${JobStatus[bad.status]}: ${bad.error}` : "without a terminal status"}`);
  };
  /** Exactly the first `n` replicas up: the missing ones started (one after another), the others stopped. */
  const ensure = async (n: number) => {
    await Promise.all(
      live.map(async (r, i) => {
        if (r && i >= n) {
          live[i] = undefined;
          await r.svc.stop();
        }
      }),
    );
    for (let i = 0; i < n; i++) if (!live[i]) await startReplica(i);
  };
  const up = () => live.filter((r): r is Replica => r !== undefined);
  const results3 = s3Client(s3.endpoint, S3_KEY_ID, S3_SECRET);
  /** The DONE jobs among `jobs` whose result object is missing (outside any timed window). */
  const missing = async (jobs: Array<Job | undefined>) => {
    const done = jobs.filter((j): j is Job => j?.status === JobStatus.DONE);
    const found = await Promise.all(done.map((j) => objectExists(results3, j.resultUri)));
    return done.filter((_, i) => !found[i]).map((j) => j.id);
  };

  const latencyPerRound = Math.max(LATENCY_MIN_PER_ROUND, Math.ceil(LATENCY_JOBS / ctx.rounds));
  const bursts: Burst[] = [];
  const latency: LatencyRound[] = [];
  const latencyWrites: LatencyWrites[] = [];

  /** Settled counters of the job tables (nothing writes to them meanwhile). */
  const settle = (since: RowCounts, minIns: number) => db.settledCounts(schema, since, minIns, 45_000, JOB_TABLES);

  const runLatency = async (r: number) => {
    const [a, b] = up();
    const stamps: Stamp[] = [];
    const ids: string[] = [];
    const ranOn: Record<string, number> = {};
    const finals: Array<Job | undefined> = [];
    let notDone = 0;
    let skippedStatus = 0;
    for (let j = 0; j < latencyPerRound; j++) {
      const job = await a!.svc.client.createJob({ reportId: "latency", queryId: `l${r}-${j}`, queryText: "SELECT 1" });
      ids.push(job.id);
      const seen = await Promise.all([watchStamped(a!.svc.client, job.id, a!.name, a!.name), watchStamped(b!.svc.client, job.id, b!.name, a!.name)]);
      for (const w of seen) {
        stamps.push(...w.stamps);
        if (w.final?.status !== JobStatus.DONE) notDone++;
        else if (!noStatusSkipped(w.statuses)) skippedStatus++;
      }
      finals.push(seen[0].final);
      const ran = seen[0].final?.replica ?? "?";
      ranOn[ran] = (ranOn[ran] ?? 0) + 1;
    }
    const times = await db.statusTimes(schema, ids);
    const round: LatencyRound = {
      round: r,
      jobs: latencyPerRound,
      latency: latencies(stamps, times),
      phases: phases(ids, times),
      ranOn,
      notDone,
      missingResults: await missing(finals),
      skipped: skippedStatus,
    };
    latency.push(round);
    const { remote, local } = round.latency;
    ctx.say(
      `  round ${r + 1}, latency (${latencyPerRound} jobs created on ${a!.name}, watched on ${a!.name} and ${b!.name}; ran on ${ranOnText(ranOn)}): ` +
        `other replica ${spread(remote)} (${remote.length} statuses), writing replica ${spread(local)} (${local.length}); ` +
        `per job p50 waiting ${fmt(round.phases.queue)} ms, export ${fmt(round.phases.export)} ms, copy ${fmt(round.phases.copy)} ms` +
        (round.missingResults.length ? `; DONE without their result object: ${round.missingResults.join(", ")}` : ""),
    );
  };

  const runBurst = async (r: number, since: RowCounts): Promise<RowCounts> => {
    const reps = up();
    const n = reps.length;
    const cpus = reps.map((x) => cpuWindow(x.svc.pid));
    const s3Cpu0 = cpuMsOf(s3.pid);
    const backends = await Promise.all(reps.map((x) => db.backendCpuWindow(x.svc.pid)));
    let ended = 0;
    let lastEnd = performance.now();
    const onTerminal = () => {
      ended++;
      lastEnd = performance.now();
    };
    const cut = new AbortController();
    setMaxListeners(BURST + 1, cut.signal); // one per watch
    const t0 = performance.now();
    const all = Promise.all(
      Array.from({ length: BURST }, async (_, i) => {
        const rep = reps[i % n]!;
        const job = await rep.svc.client.createJob({ reportId: "burst", queryId: `b${r}n${n}-${i}`, queryText: "SELECT 1" });
        return { id: job.id, on: rep.name, w: await watchStamped(rep.svc.client, job.id, rep.name, rep.name, onTerminal, cut.signal) };
      }),
    );
    // The CPU counted is the burst's: until every job ended, or none has for STALL_MS (a job stuck).
    let failed = false;
    void all.catch(() => (failed = true));
    while (ended < BURST && !failed && performance.now() - lastEnd < STALL_MS) await sleep(100);
    const stalled = ended < BURST && !failed;
    const spent = cpus.map((w) => w());
    const s3Cpu = cpuMsOf(s3.pid) - s3Cpu0;
    const server = await Promise.all(backends.map((w) => w()));
    if (stalled) {
      while (ended < BURST && !failed && performance.now() - lastEnd < STUCK_MS) await sleep(100);
      cut.abort();
    }
    const watched = await all;
    const results = watched.map((x) => x.w);
    const wallMs = Math.max(...results.map((x) => (x.final ? x.endAt - t0 : 0)));
    // A watch with no terminal state: how its job stands in the store.
    const lost = watched.filter((x) => !x.w.final);
    const lostJobs = lost.length ? await db.jobRows(schema, lost.map((x) => x.id)) : [];
    for (const x of lost) {
      ctx.say(`  job ${x.id} (watched on ${x.on}) had not ended ${STUCK_MS / 1000} s after the burst's last job did (${x.w.error}); in the store: ${JSON.stringify(lostJobs.find((j) => j.id === x.id))}`);
    }
    const times = await db.statusTimes(schema, watched.map((x) => x.id));
    const missingResults = await missing(results.map((x) => x.final));
    const after = await settle(since, BURST);
    const ranOn: Record<string, number> = {};
    for (const x of results) if (x.final) ranOn[x.final.replica] = (ranOn[x.final.replica] ?? 0) + 1;
    const burst: Burst = {
      round: r,
      replicas: n,
      wallMs,
      cpu: {
        replicas: spent.reduce((s, x) => s + x.processMs, 0) / BURST,
        backends: server.reduce((s, x) => s + x.ms, 0) / BURST,
        s3: s3Cpu / BURST,
        bench: spent[0]!.benchMs / BURST,
        lostBackends: server.reduce((s, x) => s + x.lost, 0),
        stalled,
      },
      rows: minus(after.counts, since),
      settled: after.settled,
      versionedUpdates: NaN,
      ranOn,
      latency: latencies(results.flatMap((x) => x.stamps), times),
      phases: phases(watched.map((x) => x.id), times),
      noTerminal: lost.length,
      notDone: results.filter((x) => x.final && x.final.status !== JobStatus.DONE).length,
      missingResults,
      skipped: results.filter((x) => x.final?.status === JobStatus.DONE && !noStatusSkipped(x.statuses)).length,
      lostJobs,
    };
    bursts.push(burst);
    const { remote, local } = burst.latency;
    ctx.say(
      `  round ${r + 1}, ${n} replica${n > 1 ? "s" : ""}: ${fmt((BURST / wallMs) * 1000)} jobs/s (ran on ${ranOnText(ranOn)}); ` +
        `CPU per job ${fmt(burst.cpu.replicas)} ms replicas + ${fmt(burst.cpu.backends)} ms backends + ${fmt(burst.cpu.s3)} ms S3${stalled ? " (a job stuck: counted until the others ended)" : ""}; ` +
        `job-table rows per job ${fmt(rowWrites(burst.rows) / BURST, 2)}${after.settled ? "" : " (counters not settled)"}; ` +
        `per job p50 waiting ${fmt(burst.phases.queue)} ms, export ${fmt(burst.phases.export)} ms, copy ${fmt(burst.phases.copy)} ms` +
        (missingResults.length ? `; DONE without their result object: ${missingResults.join(", ")}` : "") +
        (remote.length ? `; status latency, other replica p50 ${fmt(median(remote))} / p99 ${fmt(percentile(remote, 99))} ms, writing replica p50 ${fmt(median(local))} / p99 ${fmt(percentile(local, 99))} ms` : ""),
    );
    return after.counts;
  };

  const clockAtStart = await db.clockOffset();
  for (let r = 0; r < ctx.rounds; r++) {
    const order = r % 2 === 0 ? [1, 2, 3] : [3, 2, 1];
    for (const n of order) {
      await ensure(n);
      let since = (await settle(await db.counts(schema, JOB_TABLES), 0)).counts;
      if (n === 2) {
        await runLatency(r);
        const after = await settle(since, latencyPerRound);
        latencyWrites.push({ round: r, jobs: latencyPerRound, rows: minus(after.counts, since), settled: after.settled, versionedUpdates: NaN });
        since = after.counts;
      }
      await runBurst(r, since);
    }
  }

  results3.destroy();
  // Versioned writes per job, by burst (query ids b<round>n<replicas>-<i>) and by latency round (l<round>-<j>).
  const versions = await db.versions(schema);
  for (const b of bursts) {
    const v = versions.get(`b${b.round}n${b.replicas}`);
    if (v) b.versionedUpdates = v.versions / v.jobs - 1;
  }
  for (const l of latencyWrites) {
    const v = versions.get(`l${l.round}`);
    if (v) l.versionedUpdates = v.versions / v.jobs - 1;
  }
  // updated_at is the server's clock_timestamp(); receive times are this process's clock.
  const clock = { start: clockAtStart, end: await db.clockOffset() };
  ctx.say(
    `  clocks, PostgreSQL − bench: ${fmt(clock.start.offsetMs, 2)} ms at the start, ${fmt(clock.end.offsetMs, 2)} ms at the end (round trip ${fmt(clock.end.roundTripMs, 2)} ms)`,
  );
  return result(ctx, schema, db.description, bursts, latency, latencyWrites, clock);
}

function result(
  ctx: BenchContext,
  schema: string,
  database: string,
  bursts: Burst[],
  latency: LatencyRound[],
  latencyWrites: LatencyWrites[],
  clock: Record<"start" | "end", { offsetMs: number; roundTripMs: number }>,
): WorkloadResult {
  const remote = latency.flatMap((l) => l.latency.remote);
  const local = latency.flatMap((l) => l.latency.local);
  const latencyJobs = latency.reduce((n, l) => n + l.jobs, 0);
  const ranOn = latency.reduce((acc, l) => addCounts(acc, l.ranOn), {} as Record<string, number>);
  const by = (n: number) => bursts.filter((b) => b.replicas === n);
  const jobsPerS = (n: number) => median(by(n).map((b) => (BURST / b.wallMs) * 1000));
  const one = jobsPerS(1);
  const perJob = (n: number) => {
    const bs = by(n);
    return { rows: bs.reduce((acc, b) => plus(acc, b.rows), zeroCounts()), jobs: BURST * bs.length, settled: bs.every((b) => b.settled) };
  };
  const writesText = (n: number) => {
    const { rows, jobs } = perJob(n);
    const per = (x: number) => fmt(x / jobs, 2);
    const versioned = by(n).reduce((k, b) => k + b.versionedUpdates, 0) / by(n).length;
    return `${per(rowWrites(rows))} (${per(rows.ins)} ins + ${per(rows.upd)} upd, ${fmt(versioned, 2)} of them versioned)`;
  };
  const cpuText = (n: number) => (["replicas", "backends", "s3"] as const).map((k) => fmt(median(by(n).map((b) => b.cpu[k])))).join(" + ");
  const phaseText = (n: number) => (["queue", "export", "copy"] as const).map((k) => fmt(median(by(n).map((b) => b.phases[k])), 0)).join(" / ");
  const burstLatency = (n: number, q: number) => {
    const bs = by(n);
    return `${fmt(percentile(bs.flatMap((b) => b.latency.remote), q))} / ${fmt(percentile(bs.flatMap((b) => b.latency.local), q))}`;
  };
  const notDone = bursts.reduce((k, b) => k + b.notDone, 0) + latency.reduce((k, l) => k + l.notDone, 0);
  const missingResults = [...bursts, ...latency].reduce((k, x) => k + x.missingResults.length, 0);
  const noTerminal = bursts.reduce((k, b) => k + b.noTerminal, 0);
  const skippedStatuses = bursts.reduce((k, b) => k + b.skipped, 0) + latency.reduce((k, l) => k + l.skipped, 0);
  const watchers = BURST * bursts.length + 2 * latencyJobs;
  const latRows = latencyWrites.reduce((acc, w) => plus(acc, w.rows), zeroCounts());
  const latPer = (x: number) => fmt(x / latencyJobs, 2);
  const lat = (q: number | "max"): Row => {
    const s = q === "max" ? Math.max(...remote) : percentile(remote, q);
    const f = q === "max" ? Math.max(...local) : percentile(local, q);
    return {
      metric:
        q === 50
          ? `status latency (receive − updated_at), p50: watcher on another replica than the writer; floor column: watcher on the writing replica (${remote.length} / ${local.length} statuses of ${latencyJobs} jobs one at a time on 2 replicas; ran on ${ranOnText(ranOn)})`
          : `status latency, ${q === "max" ? "max" : `p${q}`}`,
      unit: "ms",
      service: s,
      floor: f,
      compare: diff(s, f),
      bar: "",
      met: undefined,
    };
  };
  const tput = (n: number): Row => ({
    metric: `jobs/s, ${BURST} at once round-robin on ${n} replica${n > 1 ? "s" : ""} (median of ${by(n).length})${n === 1 ? "" : "; floor column: 1 replica"}`,
    unit: "jobs/s",
    service: jobsPerS(n),
    floor: n === 1 ? "" : one,
    compare: n === 1 ? "" : `${(jobsPerS(n) / one).toFixed(2)}× of 1 replica`,
    bar: "",
    met: undefined,
  });
  const informative = (metric: string, service: string, compare = ""): Row => ({ metric, unit: "", service, floor: "", compare, bar: "", met: undefined });
  const rows: Row[] = [
    lat(50),
    lat(99),
    lat("max"),
    tput(1),
    tput(2),
    tput(3),
    informative("burst, CPU per job, ms: replica processes + their PostgreSQL backends + the S3 server; 1 / 2 / 3 replicas (median)", `${cpuText(1)} / ${cpuText(2)} / ${cpuText(3)}`),
    informative("burst, per job p50, ms: waiting / export / copy (from the job's history); 1, 2, 3 replicas", `${phaseText(1)}; ${phaseText(2)}; ${phaseText(3)}`),
    informative(
      "burst, job-table rows written per job (jobs + job_states, pg_stat_user_tables; versioned: status and progress writes; the rest: lease renewals and releases); 1 / 2 / 3 replicas",
      `${writesText(1)} / ${writesText(2)} / ${writesText(3)}`,
      [1, 2, 3].every((n) => perJob(n).settled) ? "" : "counters not settled in some burst",
    ),
    informative(
      "latency jobs (one at a time, 2 replicas), job-table rows written per job",
      `${latPer(rowWrites(latRows))} (${latPer(latRows.ins)} ins + ${latPer(latRows.upd)} upd, ${fmt(latencyWrites.reduce((k, w) => k + w.versionedUpdates, 0) / latencyWrites.length, 2)} of them versioned)`,
      latencyWrites.every((w) => w.settled) ? "" : "counters not settled in some round",
    ),
    informative(
      "burst, status latency, ms: other replica / writing replica, p50; p99 (watchers on the creating replica)",
      `2 replicas: ${burstLatency(2, 50)}; ${burstLatency(2, 99)} — 3 replicas: ${burstLatency(3, 50)}; ${burstLatency(3, 99)}`,
    ),
    {
      metric: `jobs not DONE / DONE without their result object / watchers with no terminal status / with a status skipped (of ${watchers} watchers)`,
      unit: "",
      service: `${notDone} / ${missingResults} / ${noTerminal} / ${skippedStatuses}`,
      floor: "",
      compare: remote.length < LATENCY_MIN_SAMPLES ? `only ${remote.length} cross-replica statuses (fewer than ${LATENCY_MIN_SAMPLES})` : "",
      bar: "0 / 0 / 0 / 0",
      met: notDone === 0 && missingResults === 0 && noTerminal === 0 && skippedStatuses === 0,
    },
  ];
  if (remote.length < LATENCY_MIN_SAMPLES) ctx.say(`  note: ${remote.length} cross-replica status changes measured, fewer than ${LATENCY_MIN_SAMPLES}`);
  const byStatus = latency.reduce((acc, l) => {
    for (const [k, xs] of Object.entries(l.latency.byStatus)) (acc[k] ??= []).push(...xs);
    return acc;
  }, {} as Record<string, number[]>);
  ctx.say(`  latency jobs by status: ${Object.entries(byStatus).sort(([a], [b]) => a.localeCompare(b)).map(([k, xs]) => `${k} p50 ${fmt(median(xs))} / p99 ${fmt(percentile(xs, 99))} ms (${xs.length})`).join("; ")}`);
  return {
    name: "replicas",
    title: TITLE,
    rows,
    details: {
      database,
      schema,
      burst: BURST,
      slots: SLOTS,
      warmup: WARMUP,
      clock,
      latencyByStatus: Object.fromEntries(Object.entries(byStatus).map(([k, xs]) => [k, { n: xs.length, p50: median(xs), p99: percentile(xs, 99), max: Math.max(...xs) }])),
      latency: latency.map((l) => ({ ...l, remoteP50: median(l.latency.remote), remoteP99: percentile(l.latency.remote, 99), localP50: median(l.latency.local), localP99: percentile(l.latency.local, 99) })),
      latencyWrites,
      bursts: bursts.map((b) => ({ ...b, jobsPerS: (BURST / b.wallMs) * 1000 })),
    },
  };
}

function ranOnText(ranOn: Record<string, number>): string {
  return Object.entries(ranOn)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, n]) => `${name} ${n}`)
    .join(", ");
}

function addCounts(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

