// 5 (issue 15). Watchers across replicas: 10,000 WatchJob streams on one job,
// spread evenly over 3 replicas (real `chjob serve` processes on one PostgreSQL
// schema, bench/replica-set.ts). Bars: every stream sees DONE within 250 ms of
// the first; each replica's RSS grows by at most 128 MiB; one NOTIFY per status
// change of the job, however many watch it.
//
// The streams come from CLIENT_PROCESSES processes of their own
// (bench/watch-client.ts), each with CHANNELS HTTP/2 connections to each replica;
// receive times are on the machine's monotonic clock, common to all processes,
// so the spread is taken over all streams at once. The job sleeps HOLD_S seconds
// (one row a second) so that every stream is open before it ends: a stream whose
// first message is already DONE joined too late and is counted.
//
// Per round: first the same job with a single watcher (the floor column: what
// the job itself costs the replicas in RSS, and its NOTIFYs); then the job with
// all the streams. RSS: VmRSS of each replica at rest before the job, against its
// peak (sampled every 10 ms) until the last stream ended. NOTIFYs: a LISTEN
// connection of the bench's own on the schema's channel counts notifications
// naming the job ("<id>:<version>"), matched against the job's status history
// (job_states): each status change must be notified exactly once; the rest are
// progress notifications (at most about one a second while it runs). The replicas
// run with the probe (bench/probe.cts): when each last wrote to each stream (the
// servers' share of the spread), and their event-loop delay while DONE goes out.
//
// BENCH_WATCHERS (default 10000) and BENCH_WATCHERS_HOLD_S (default 12) make a
// smaller or longer run.
import { performance } from "node:perf_hooks";
import { JobStatus } from "../../gen/chjob/v1/job_service_pb.js";
import { cpuTimeline } from "../cpu.js";
import { onReplicaSet, REPLICA_NAMES, type Replica, type ReplicaSet } from "../replica-set.js";
import { idleRss, mib, sampleRss } from "../rss.js";
import { mustBeDone, serviceJob, startBenchService } from "../service.js";
import { median, percentile } from "../stats.js";
import { monoMs, startWatchClient, type WatchClient, type WatchReport } from "../watch-client.js";
import { fmt, type BenchContext, type Row, type Workload, type WorkloadResult } from "../workload.js";

const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 10_000);
const HOLD_S = Number(process.env.BENCH_WATCHERS_HOLD_S ?? 12);
const REPLICAS = 3;
const CLIENT_PROCESSES = 4;
/** Streams per HTTP/2 connection at most (many clients each with a few streams, not a few with thousands). */
const STREAMS_PER_CONNECTION = 100;
/** HTTP/2 connections from each client process to each replica. */
const CHANNELS = Math.ceil(WATCHERS / (REPLICAS * CLIENT_PROCESSES * STREAMS_PER_CONNECTION));
const SLOTS = 2;
const SPREAD_BAR_MS = 250;
const RSS_BAR_MIB = 128;
/** One row a second: the job runs HOLD_S seconds and uses almost no memory. */
const sqlFor = (seconds: number) => `SELECT sleepEachRow(1) AS x FROM numbers(${seconds}) SETTINGS max_block_size = 1`;
/** After the last DONE, notifications still on their way get this long to arrive. */
const NOTIFY_SETTLE_MS = 500;
const TITLE = `Watchers: ${WATCHERS.toLocaleString("en")} WatchJob streams on one job over ${REPLICAS} replicas on one PostgreSQL`;

interface NotifyCount {
  /** Status changes of the job (rows of its history). */
  statusChanges: number;
  /** Notifications naming a version of its history, in all; versions of it notified other than once. */
  statusNotifies: number;
  notOnce: number;
  /** Notifications naming any other version (progress). */
  progressNotifies: number;
}

interface WatchRound {
  round: number;
  jobId: string;
  createdOn: string;
  ranOn: string;
  /** First DONE → last DONE over all streams, ms. */
  spreadMs: number;
  /** The same by replica (streams watching on it). */
  spreadByReplicaMs: number[];
  /** The replicas' last writes to their streams: earliest → latest over all, and by replica, ms. */
  serverSpreadMs: number;
  serverSpreadByReplicaMs: number[];
  /** Each replica's first last-write after the earliest replica's (the NOTIFY hop and re-read, for the replicas that did not run the job), ms. */
  serverLagByReplicaMs: number[];
  /** DONE's commit (its updated_at in the job's history) → each replica's first write of it, ms; READING_RESULTS → DONE commits, ms. */
  commitToWriteByReplicaMs: number[];
  copyMs: number;
  /** By replica, after its first write of DONE: its writes' p50 / p90 / p99, and the DONE received p50 / p90 / max, ms. */
  writeQuantilesMs: number[][];
  receiveQuantilesMs: number[][];
  /** CreateJob answered → all streams joined; → first DONE; → last DONE, ms. */
  joinedMs: number;
  firstDoneMs: number;
  lastDoneMs: number;
  /** Status changes' spreads over the streams that saw them as changes (RUNNING, READING_RESULTS), ms. */
  changeSpreadMs: Record<string, number>;
  idleMiB: number[];
  peakMiB: number[];
  growthMiB: number[];
  oneWatcherGrowthMiB: number[];
  /** CPU of each replica while DONE went out (from the replicas' first write of it to the last DONE received), ms. */
  doneCpuMs: number[];
  /** CPU of the client processes over the same time, ms (all of them). */
  doneClientCpuMs: number;
  /** Each replica's event loop's longest delay from all streams joined to the last DONE, ms. */
  loopDelayMaxMs: number[];
  notifies: NotifyCount;
  oneWatcherNotifies: NotifyCount;
  messages: number;
  /** Mean bytes of a message (gRPC frame). */
  messageBytes: number;
  lateJoiners: number;
  skipped: number;
  failed: number;
  notDone: number;
  errors: string[];
}

export const watchers: Workload = {
  name: "watchers",
  title: TITLE,
  defaultRounds: 3,
  run(ctx) {
    return onReplicaSet(ctx, { name: "watchers", title: TITLE }, (set) => measure(ctx, set));
  },
};

async function measure(ctx: BenchContext, set: ReplicaSet): Promise<WorkloadResult> {
  const { db, schema, live, started } = set;
  for (let i = 0; i < REPLICAS; i++) {
    const name = REPLICA_NAMES[i]!;
    // The probe: when each replica last wrote to each stream, and its event-loop delay.
    const svc = await startBenchService({ ...ctx.service, env: set.env(name, SLOTS), keepLog: true, probe: true });
    live[i] = { name, svc };
    started.push(live[i]!);
  }
  const reps = live as Replica[];
  const notifications: string[] = [];
  const unlisten = await db.listen(schema, (payload) => notifications.push(payload));
  const clients: WatchClient[] = Array.from({ length: CLIENT_PROCESSES }, () => startWatchClient());
  const rounds: WatchRound[] = [];
  try {
    await Promise.all(clients.map((c) => c.connect(reps.map((r) => r.svc.grpcAddress), CHANNELS)));
    // Warm-up: a job on each replica, then a short job with a tenth of the streams.
    for (const r of reps) mustBeDone(await serviceJob(r.svc.client, { reportId: "warm", queryId: r.name, sql: "SELECT 1" }));
    await watchRound(ctx, set, reps, clients, notifications, -1, Math.ceil(WATCHERS / 10), 3);
    for (let r = 0; r < ctx.rounds; r++) rounds.push(await watchRound(ctx, set, reps, clients, notifications, r, WATCHERS, HOLD_S));
  } finally {
    await Promise.allSettled(clients.map((c) => c.stop()));
    await unlisten().catch(() => undefined);
  }
  return result(ctx, rounds);
}

async function watchRound(
  ctx: BenchContext,
  set: ReplicaSet,
  reps: Replica[],
  clients: WatchClient[],
  notifications: string[],
  r: number,
  streams: number,
  holdS: number,
): Promise<WatchRound> {
  const { db, schema } = set;
  const sql = sqlFor(holdS);
  const creator = reps[(r + REPLICAS) % REPLICAS]!;
  const tag = r < 0 ? "warm" : `r${r}`;

  // The floor: the same job, one watcher.
  let idle = await Promise.all(reps.map((x) => idleRss(x.svc.pid)));
  let samplers = reps.map((x) => sampleRss(x.svc.pid));
  const one = await serviceJob(creator.svc.client, { reportId: "watchers", queryId: `${tag}-one`, sql });
  mustBeDone(one);
  const oneWatcherGrowth = samplers.map((s, i) => s.stop() - idle[i]!);
  await sleep(NOTIFY_SETTLE_MS);
  const oneWatcherNotifies = await countNotifies(db, schema, one.final.id, notifications);

  // All the streams.
  idle = await Promise.all(reps.map((x) => idleRss(x.svc.pid)));
  samplers = reps.map((x) => sampleRss(x.svc.pid));
  await Promise.all(reps.map((x) => x.svc.probe())); // starts the probes' stream records over
  const job = await creator.svc.client.createJob({ reportId: "watchers", queryId: `${tag}-all`, queryText: sql });
  const t0 = monoMs();
  const per = Math.ceil(streams / clients.length);
  const watches = clients.map((c, i) => c.watch(job.id, i * per, Math.max(0, Math.min(per, streams - i * per))));
  const joinedAt = Math.max(...(await Promise.all(watches.map((w) => w.joined))));
  // From here the probes count only what the replicas write for the rest of the job (DONE above all).
  await Promise.all(reps.map((x) => x.svc.probe()));
  const cpu = cpuTimeline([...reps.map((x) => x.svc.pid), ...clients.map((c) => c.pid)]);
  const reports = await Promise.all(watches.map((w) => w.report));
  cpu.stop();
  const probes = await Promise.all(reps.map((x) => x.svc.probe()));
  const peak = samplers.map((s) => s.stop());
  await sleep(NOTIFY_SETTLE_MS);
  const notifies = await countNotifies(db, schema, job.id, notifications);
  notifications.length = 0;

  const all = merge(reports);
  const done = all.endAt.filter((x, i) => Number.isFinite(x) && all.endStatus[i] === JobStatus.DONE);
  const spread = (xs: number[]) => (xs.length ? max(xs) - min(xs) : NaN);
  const byReplica = (xs: number[]) => reps.map((_, k) => xs.filter((_, i) => all.on[i] === k && Number.isFinite(xs[i]!)));
  const endByReplica = byReplica(all.endAt);
  const writes = probes.map((p) => p.streams.lastWriteMonoMs);
  const firsts = writes.flatMap((w) => (w ? [w.first] : []));
  const lasts = writes.flatMap((w) => (w ? [w.last] : []));
  const burst = (pid: number) => cpu.between(pid, min(firsts), max(done));
  const q = (xs: number[], p: number) => percentile(xs, p);
  // The history's times are the database's clock_timestamp(): onto the monotonic clock through this process's wall clock.
  const { offsetMs } = await db.clockOffset(10);
  const epochMinusMono = performance.timeOrigin + performance.now() - monoMs();
  const times = await db.statusTimes(schema, [job.id]);
  const committed = (status: JobStatus) => (times.get(`${job.id}:${status}`) ?? NaN) - offsetMs - epochMinusMono;
  const ranOn = (await db.jobRows(schema, [job.id]))[0]?.replica;
  const round: WatchRound = {
    round: r,
    jobId: job.id,
    createdOn: creator.name,
    ranOn: String(ranOn ?? "?"),
    spreadMs: spread(done),
    spreadByReplicaMs: endByReplica.map(spread),
    serverSpreadMs: firsts.length ? max(lasts) - min(firsts) : NaN,
    serverSpreadByReplicaMs: writes.map((w) => (w ? w.last - w.first : NaN)),
    serverLagByReplicaMs: writes.map((w) => (w ? w.first - min(firsts) : NaN)),
    commitToWriteByReplicaMs: writes.map((w) => (w ? w.first - committed(JobStatus.DONE) : NaN)),
    copyMs: committed(JobStatus.DONE) - committed(JobStatus.READING_RESULTS),
    writeQuantilesMs: probes.map(({ streams: { lastWriteQuantilesMs: w } }) => (w ? [w.p50, w.p90, w.p99] : [])),
    receiveQuantilesMs: endByReplica.map((xs, k) => {
      const from = writes[k]?.first ?? NaN;
      return [q(xs, 50) - from, q(xs, 90) - from, max(xs) - from];
    }),
    joinedMs: joinedAt - t0,
    firstDoneMs: min(done) - t0,
    lastDoneMs: max(done) - t0,
    changeSpreadMs: Object.fromEntries(
      [JobStatus.RUNNING, JobStatus.READING_RESULTS].map((s) => [JobStatus[s], spread(all.changeAt[s]!.filter(Number.isFinite))]),
    ),
    idleMiB: idle.map(mib),
    peakMiB: peak.map(mib),
    growthMiB: peak.map((p, i) => mib(p - idle[i]!)),
    oneWatcherGrowthMiB: oneWatcherGrowth.map(mib),
    doneCpuMs: reps.map((x) => burst(x.svc.pid)),
    doneClientCpuMs: clients.reduce((a, c) => a + burst(c.pid), 0),
    loopDelayMaxMs: probes.map((p) => p.loopDelayMs.max),
    notifies,
    oneWatcherNotifies,
    messages: all.messages,
    messageBytes: all.bytes / all.messages,
    lateJoiners: all.firstStatus.filter((s) => s === JobStatus.DONE).length,
    skipped: all.skipped,
    failed: all.failed,
    notDone: all.endStatus.filter((s) => s !== JobStatus.DONE).length,
    errors: all.errors,
  };
  const x = round;
  const list = (xs: number[], digits = 1) => xs.map((v) => fmt(v, digits)).join(" / ");
  ctx.say(
    `  ${r < 0 ? `warm-up (${streams} streams, ${holdS} s job)` : `round ${r + 1}`}: DONE spread ${fmt(x.spreadMs)} ms over ${done.length} streams ` +
      `(by replica ${list(x.spreadByReplicaMs)}; replicas' last writes ${fmt(x.serverSpreadMs)} ms, by replica ${list(x.serverSpreadByReplicaMs)}, starting +${list(x.serverLagByReplicaMs)}, ${list(x.commitToWriteByReplicaMs)} ms after DONE was committed, ${fmt(x.copyMs)} ms after READING_RESULTS; ` +
      `after each replica's first write, writes p50/p90/p99 ${x.writeQuantilesMs.map((w) => list(w, 0)).join(" | ")} ms, received p50/p90/max ${x.receiveQuantilesMs.map((w) => list(w, 0)).join(" | ")} ms); ` +
      `joined ${fmt(x.joinedMs, 0)} ms, first/last DONE ${fmt(x.firstDoneMs, 0)}/${fmt(x.lastDoneMs, 0)} ms after CreateJob; created on ${x.createdOn}, ran on ${x.ranOn}; ` +
      `RSS +${list(x.growthMiB)} MiB (idle ${list(x.idleMiB, 0)}; one watcher +${list(x.oneWatcherGrowthMiB)}); CPU while DONE went out ${list(x.doneCpuMs, 0)} ms (clients ${fmt(x.doneClientCpuMs, 0)} ms); loop delay max ${list(x.loopDelayMaxMs)} ms; ` +
      `NOTIFYs: ${notifyText(x.notifies)} (one watcher: ${notifyText(x.oneWatcherNotifies)}); ` +
      `${x.messages} messages of ${fmt(x.messageBytes, 0)} B; late ${x.lateJoiners}, skipped ${x.skipped}, failed ${x.failed}, not DONE ${x.notDone}${x.errors.length ? `: ${x.errors.join("; ")}` : ""}`,
  );
  return round;
}

const notifyText = (n: NotifyCount) => `${n.statusNotifies} for ${n.statusChanges} status changes${n.notOnce ? ` (${n.notOnce} not once)` : ""} + ${n.progressNotifies} progress`;

/** The notifications naming job `id`, against its status history. */
async function countNotifies(db: ReplicaSet["db"], schema: string, id: string, notifications: string[]): Promise<NotifyCount> {
  const history = await db.history(schema, id);
  const versions = new Map<number, number>(history.map((h) => [h.version, 0]));
  let progress = 0;
  for (const payload of notifications) {
    // "<id>:<version>:<sender>[:<state>]" (src/store/migrations.ts); "q:<sender>" names no job.
    const [jobId, version] = payload.split(":", 2);
    if (jobId !== id) continue;
    const v = Number(version);
    const n = versions.get(v);
    if (n === undefined) progress++;
    else versions.set(v, n + 1);
  }
  const counts = [...versions.values()];
  return {
    statusChanges: history.length,
    statusNotifies: counts.reduce((a, b) => a + b, 0),
    notOnce: counts.filter((n) => n !== 1).length,
    progressNotifies: progress,
  };
}

/** The client processes' reports as one (stream order does not matter). */
function merge(reports: WatchReport[]): WatchReport {
  const out: WatchReport = { on: [], firstAt: [], firstStatus: [], changeAt: {}, endAt: [], endStatus: [], skipped: 0, failed: 0, errors: [], messages: 0, bytes: 0 };
  for (const rep of reports) {
    out.on.push(...rep.on);
    out.firstAt.push(...rep.firstAt);
    out.firstStatus.push(...rep.firstStatus);
    out.endAt.push(...rep.endAt);
    out.endStatus.push(...rep.endStatus);
    for (const [s, xs] of Object.entries(rep.changeAt)) (out.changeAt[Number(s)] ??= []).push(...xs);
    out.skipped += rep.skipped;
    out.failed += rep.failed;
    out.errors.push(...rep.errors);
    out.messages += rep.messages;
    out.bytes += rep.bytes;
  }
  return out;
}

function result(ctx: BenchContext, rounds: WatchRound[]): WorkloadResult {
  const worst = (f: (x: WatchRound) => number) => max(rounds.map(f));
  const med = (f: (x: WatchRound) => number) => median(rounds.map(f));
  const worstSpread = worst((x) => x.spreadMs);
  const worstGrowth = worst((x) => max(x.growthMiB));
  const late = rounds.reduce((a, x) => a + x.lateJoiners, 0);
  const skipped = rounds.reduce((a, x) => a + x.skipped, 0);
  const failed = rounds.reduce((a, x) => a + x.failed + x.notDone, 0);
  const sum = (f: (x: WatchRound) => NotifyCount, k: keyof NotifyCount) => rounds.reduce((a, x) => a + f(x)[k], 0);
  const notifyRow = (f: (x: WatchRound) => NotifyCount) => `${sum(f, "statusNotifies")} / ${sum(f, "statusChanges")}, +${sum(f, "progressNotifies")} progress`;
  const notifiesMet = rounds.every((x) => x.notifies.notOnce === 0 && x.notifies.statusNotifies === x.notifies.statusChanges);
  const perReplica = (f: (x: WatchRound) => number[]) => REPLICA_NAMES.slice(0, REPLICAS).map((_, i) => fmt(median(rounds.map((x) => f(x)[i]!)))).join(" / ");
  const rows: Row[] = [
    {
      metric: `DONE spread over ${WATCHERS.toLocaleString("en")} streams on ${REPLICAS} replicas, first → last DONE received (median; worst of ${rounds.length})`,
      unit: "",
      service: `${fmt(med((x) => x.spreadMs))} ms; ${fmt(worstSpread)} ms`,
      floor: "",
      compare: "",
      bar: `≤ ${SPREAD_BAR_MS} ms`,
      met: worstSpread <= SPREAD_BAR_MS && late === 0 && failed === 0,
    },
    {
      metric:
        "of which the replicas: earliest → latest last write to a stream over the 3 (median; worst); by replica (median), and when each replica's writes began after the first replica's (median)",
      unit: "",
      service: `${fmt(med((x) => x.serverSpreadMs))} ms; ${fmt(worst((x) => x.serverSpreadMs))} ms; ${perReplica((x) => x.serverSpreadByReplicaMs)} ms; +${perReplica((x) => x.serverLagByReplicaMs)} ms`,
      floor: "",
      compare: `received, by replica: ${perReplica((x) => x.spreadByReplicaMs)} ms; DONE committed → each replica's first write: ${perReplica((x) => x.commitToWriteByReplicaMs)} ms`,
      bar: "",
      met: undefined,
    },
    {
      metric: "CreateJob → all streams joined / first DONE / last DONE (median)",
      unit: "",
      service: `${fmt(med((x) => x.joinedMs), 0)} / ${fmt(med((x) => x.firstDoneMs), 0)} / ${fmt(med((x) => x.lastDoneMs), 0)} ms`,
      floor: `job of ${HOLD_S} s`,
      compare: "",
      bar: "",
      met: undefined,
    },
    {
      metric: `RSS growth of each replica, ${WATCHERS.toLocaleString("en")} streams (median of the 3 by replica; worst of any)`,
      unit: "",
      service: `${perReplica((x) => x.growthMiB)} MiB; ${fmt(worstGrowth)} MiB`,
      floor: `one watcher: ${perReplica((x) => x.oneWatcherGrowthMiB)} MiB`,
      compare: `idle ${perReplica((x) => x.idleMiB)} MiB`,
      bar: `≤ ${RSS_BAR_MIB} MiB`,
      met: worstGrowth <= RSS_BAR_MIB,
    },
    {
      metric: "NOTIFYs naming the job: for status changes / status changes, + progress (all rounds)",
      unit: "",
      service: notifyRow((x) => x.notifies),
      floor: `one watcher: ${notifyRow((x) => x.oneWatcherNotifies)}`,
      compare: "",
      bar: "one per status change",
      met: notifiesMet,
    },
    {
      metric:
        "replicas: CPU while DONE went out (their first write of it → the last DONE received), ms; event-loop delay max from all joined to the last DONE, ms (median, by replica); floor column: the client processes' CPU while DONE went out",
      unit: "",
      service: `${perReplica((x) => x.doneCpuMs)}; ${perReplica((x) => x.loopDelayMaxMs)}`,
      floor: `${fmt(med((x) => x.doneClientCpuMs), 0)} ms`,
      compare: "",
      bar: "",
      met: undefined,
    },
    {
      metric: "streams with a status skipped / joined after DONE / failed or not DONE",
      unit: "",
      service: `${skipped} / ${late} / ${failed}`,
      floor: "",
      compare: "",
      bar: "0 / 0 / 0",
      met: skipped === 0 && late === 0 && failed === 0,
    },
  ];
  if (late) ctx.say(`  note: ${late} streams joined after DONE: raise BENCH_WATCHERS_HOLD_S`);
  return {
    name: "watchers",
    title: TITLE,
    rows,
    details: { watchers: WATCHERS, replicas: REPLICAS, clientProcesses: CLIENT_PROCESSES, channelsPerReplica: CHANNELS, holdS: HOLD_S, sql: sqlFor(HOLD_S), rounds },
  };
}

// Loops: spreading 10,000 numbers as arguments is near the engine's limit.
const min = (xs: number[]) => xs.reduce((a, b) => Math.min(a, b), Infinity);
const max = (xs: number[]) => xs.reduce((a, b) => Math.max(a, b), -Infinity);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
