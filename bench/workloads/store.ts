// 6. Store overhead: small jobs (SELECT 1, one at a time, CreateJob -> DONE on
// WatchJob) on the service with its embedded job store (PGlite, in-process), on
// the service with a PostgreSQL server as its job store (a fresh schema, dropped
// afterwards), and on the floor (the same exports + CopyObject, no service).
// The three take turns round by round. Also counted: the service's CPU per job
// (and, on PostgreSQL, its backends' CPU), and the store's writes per job.
//
// PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test);
// the bench makes schema chjob_bench_<pid>_<random> there (the service migrates it)
// and drops it at the end. Without a server there the workload is skipped.
import { cpuWindow, type LoopDelay } from "../cpu.js";
import { startFloor, type Floor } from "../floor-process.js";
import type { JobSpec } from "../protocol.js";
import { runJobsInTurn, startBenchService, type BenchService } from "../service.js";
import { median, percentile } from "../stats.js";
import { BenchDatabase, JOB_TABLES, minus, plus, rowWrites, zeroCounts, pgliteVersions, type RowCounts, type VersionCounts } from "../store-stats.js";
import { diff, fmt, skippedForPostgres, type BenchContext, type Row, type Workload, type WorkloadResult } from "../workload.js";

const JOBS = 50;
const WARMUP = 20;
const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";

type Side = "pglite" | "postgres" | "floor";
const SIDES: Side[] = ["pglite", "postgres", "floor"];
/** query_id tags: <tag><round>-<i>; warm-up jobs are w<tag>-<i>. */
const TAG: Record<Side, string> = { pglite: "l", postgres: "p", floor: "f" };

interface RoundWrites {
  round: number;
  jobs: number;
  rows: RowCounts;
  /** False when the counters had not settled within the cap: the round's figures may be short. */
  settled: boolean;
}

const TITLE = `Store overhead: SELECT 1, ${JOBS} in a row per round, service on PGlite / on PostgreSQL / floor, in turns`;

export const store: Workload = {
  name: "store",
  title: TITLE,
  defaultRounds: 3,
  async run(ctx) {
    const url = process.env.BENCH_DATABASE_URL ?? DEFAULT_URL;
    const db = await BenchDatabase.connect(url);
    if (typeof db === "string") {
      ctx.say(`  skipped: no PostgreSQL to run against (${db}); set BENCH_DATABASE_URL`);
      return skippedForPostgres("store", TITLE, db);
    }
    const schema = db.freshSchema();
    ctx.say(`  PostgreSQL: ${db.description}, schema ${schema}`);
    let floor: Floor | undefined;
    let lite: Stoppable | undefined;
    let pg: Stoppable | undefined;
    let stops: PromiseSettledResult<unknown>[] = [];
    let result: Awaited<ReturnType<typeof measure>>;
    try {
      floor = await startFloor(1, ctx.floorNodeArgs);
      lite = stoppable(await startBenchService({ ...ctx.service, keepData: true }));
      pg = stoppable(await startBenchService({ ...ctx.service, env: { ...ctx.service.env, CHJOB_DATABASE_URL: db.url, CHJOB_DATABASE_SCHEMA: schema } }));
      result = await measure(ctx, db, schema, floor, lite, pg);
    } finally {
      stops = await Promise.allSettled([lite?.stopOnce(), pg?.stopOnce(), floor?.stop()]);
      lite?.svc.removeData();
      await db.dropSchema(schema).catch((err: Error) => ctx.say(`  could not drop schema ${schema}: ${err.message}`));
      await db.close();
    }
    // A service that did not stop cleanly fails the run, once the measurement itself succeeded
    // (thrown from the finally block, it would have hidden the measurement's own error).
    const failed = stops.find((s) => s.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return result;
  },
};

/** A service stopped at most once (the PGlite one stops early: its store is read afterwards). */
interface Stoppable {
  svc: BenchService;
  stopOnce(): Promise<LoopDelay | undefined>;
}

function stoppable(svc: BenchService): Stoppable {
  let stopped: Promise<LoopDelay | undefined> | undefined;
  return { svc, stopOnce: () => (stopped ??= svc.stop()) };
}

async function measure(ctx: BenchContext, db: BenchDatabase, schema: string, floor: Floor, liteService: Stoppable, pgService: Stoppable): Promise<WorkloadResult> {
  const lite = liteService.svc;
  const pg = pgService.svc;
  const specs = (tag: string, n = JOBS): JobSpec[] => Array.from({ length: n }, (_, i) => ({ reportId: "bench", queryId: `${tag}-${i}`, sql: "SELECT 1" }));
  const runService = (svc: BenchService, jobs: JobSpec[]) => runJobsInTurn(svc.client, jobs);
  const ms: Record<Side, number[][]> = { pglite: [], postgres: [], floor: [] };
  const cpu = {
    pglite: { service: [] as number[], client: [] as number[] },
    postgres: { service: [] as number[], client: [] as number[], backends: [] as number[], backendCount: [] as number[], lostBackends: 0 },
    floor: [] as number[],
  };
  const writes: RoundWrites[] = [];

  await runService(lite, specs("wl", WARMUP));
  await runService(pg, specs("wp", WARMUP));
  await floor.jobs(specs("wf", WARMUP));
  // The counters from here on are the measured rounds' (the warm-up's reach the statistics first).
  let counted = (await db.settledCounts(schema, await db.counts(schema, JOB_TABLES), 0, undefined, JOB_TABLES)).counts;

  const run: Record<Side, (r: number) => Promise<void>> = {
    pglite: async (r) => {
      const window = cpuWindow(lite.pid);
      ms.pglite.push(await runService(lite, specs(`${TAG.pglite}${r}`)));
      const spent = window();
      cpu.pglite.service.push(spent.processMs / JOBS);
      cpu.pglite.client.push(spent.benchMs / JOBS);
    },
    postgres: async (r) => {
      const backends = await db.backendCpuWindow(pg.pid);
      const window = cpuWindow(pg.pid);
      ms.postgres.push(await runService(pg, specs(`${TAG.postgres}${r}`)));
      const spent = window();
      const server = await backends();
      cpu.postgres.service.push(spent.processMs / JOBS);
      cpu.postgres.client.push(spent.benchMs / JOBS);
      cpu.postgres.backends.push(server.ms / JOBS);
      cpu.postgres.backendCount.push(server.backends);
      cpu.postgres.lostBackends += server.lost;
      // Outside the timed window: wait for every backend's counters.
      const after = await db.settledCounts(schema, counted, JOBS, undefined, JOB_TABLES);
      writes.push({ round: r, jobs: JOBS, rows: minus(after.counts, counted), settled: after.settled });
      counted = after.counts;
    },
    floor: async (r) => {
      const { timings, cpuMs } = await floor.jobs(specs(`${TAG.floor}${r}`));
      ms.floor.push(timings.map((t) => t.ms));
      cpu.floor.push(cpuMs / JOBS);
    },
  };

  for (let r = 0; r < ctx.rounds; r++) {
    // Each side goes first, second and third in turn.
    const order = SIDES.map((_, i) => SIDES[(i + r) % SIDES.length]!);
    for (const side of order) await run[side](r);
    const w = writes.at(-1)!;
    ctx.say(
      `  round ${r + 1} (${order.join(", ")}): p50 PGlite ${fmt(median(ms.pglite.at(-1)!))} ms, PostgreSQL ${fmt(median(ms.postgres.at(-1)!))} ms, floor ${fmt(median(ms.floor.at(-1)!))} ms; ` +
        `PostgreSQL rows written per job ${fmt(rowWrites(w.rows) / w.jobs, 2)}${w.settled ? "" : " (counters not settled)"}`,
    );
  }

  // Versions the jobs reached, from each store's jobs table (PGlite's once its service stopped).
  const pgVersions = await db.versions(schema);
  const liteLoopDelay = await liteService.stopOnce();
  const liteVersions = await pgliteVersions(lite.dataDir);
  const perJob = (versions: Map<string, VersionCounts>, side: Side) => {
    const measured = [...versions].filter(([tag]) => new RegExp(`^${TAG[side]}\\d+$`).test(tag)).map(([, v]) => v);
    const jobs = measured.reduce((n, v) => n + v.jobs, 0);
    return { jobs, versions: measured.reduce((n, v) => n + v.versions, 0) / jobs, attempts: measured.reduce((n, v) => n + v.attempts, 0) / jobs };
  };
  const liteV = perJob(liteVersions, "pglite");
  const pgV = perJob(pgVersions, "postgres");

  const n = JOBS * ctx.rounds;
  const all = (side: Side) => ms[side].flat();
  const p = (side: Side, q: number) => percentile(all(side), q);
  const f50 = p("floor", 50);
  const f99 = p("floor", 99);
  const total = writes.reduce((acc, w) => plus(acc, w.rows), zeroCounts());
  const wJobs = writes.reduce((k, w) => k + w.jobs, 0);
  const per = (x: number) => fmt(x / wJobs, 2);
  const floorCpu = median(cpu.floor);
  const liteCpu = median(cpu.pglite.service);
  const pgCpu = median(cpu.postgres.service);
  const pgBackendCpu = median(cpu.postgres.backends);
  const latency = (label: string, side: Side): Row[] => {
    const s50 = p(side, 50);
    const s99 = p(side, 99);
    return [
      { metric: `${label}: p50 CreateJob → DONE (${n} jobs)`, unit: "ms", service: s50, floor: f50, compare: diff(s50, f50), bar: "overhead ≤ 5 ms (as small)", met: s50 - f50 <= 5 },
      { metric: `${label}: p99 CreateJob → DONE`, unit: "ms", service: s99, floor: f99, compare: diff(s99, f99), bar: "", met: undefined },
    ];
  };
  const rows: Row[] = [
    ...latency("PGlite", "pglite"),
    ...latency("PostgreSQL", "postgres"),
    {
      metric: "PostgreSQL against PGlite, p50 / p99",
      unit: "",
      service: `${diff(p("postgres", 50), p("pglite", 50))} / ${diff(p("postgres", 99), p("pglite", 99))}`,
      floor: "",
      compare: "",
      bar: "",
      met: undefined,
    },
    {
      metric: "PGlite: CPU per job (service process, all threads + its gRPC client)",
      unit: "ms",
      service: `${fmt(liteCpu)} + ${fmt(median(cpu.pglite.client))} ms`,
      floor: floorCpu,
      compare: diff(liteCpu, floorCpu) + " (service process)",
      bar: "",
      met: undefined,
    },
    {
      metric: "PostgreSQL: CPU per job (service process + gRPC client + PostgreSQL backends)",
      unit: "ms",
      service: `${fmt(pgCpu)} + ${fmt(median(cpu.postgres.client))} + ${fmt(pgBackendCpu)} ms`,
      floor: floorCpu,
      compare: `${diff(pgCpu, floorCpu)} (service process); ${diff(pgCpu + pgBackendCpu, floorCpu)} with backends`,
      bar: "",
      met: undefined,
    },
    {
      metric: "PostgreSQL: rows written per job (pg_stat_user_tables of the schema's jobs and job_states, measured rounds)",
      unit: "",
      service: `${per(rowWrites(total))}: ${per(total.ins)} ins + ${per(total.upd)} upd (${per(total.hotUpd)} HOT) + ${per(total.del)} del`,
      floor: "",
      compare: writes.every((w) => w.settled) ? "" : "counters not settled in some round",
      bar: "",
      met: undefined,
    },
    {
      metric: "versioned writes per job (mean `version` of the measured jobs: 1 INSERT + UPDATEs), PGlite / PostgreSQL",
      unit: "",
      service: `${fmt(liteV.versions, 2)} / ${fmt(pgV.versions, 2)}`,
      floor: "",
      compare: `jobs counted ${liteV.jobs} / ${pgV.jobs}`,
      bar: "",
      met: undefined,
    },
  ];
  return {
    name: "store",
    title: TITLE,
    rows,
    details: {
      jobs: JOBS,
      warmup: WARMUP,
      database: db.description,
      schema,
      perRound: ms.floor.map((_, i) => ({
        pgliteP50: median(ms.pglite[i]!),
        pgliteP99: percentile(ms.pglite[i]!, 99),
        postgresP50: median(ms.postgres[i]!),
        postgresP99: percentile(ms.postgres[i]!, 99),
        floorP50: median(ms.floor[i]!),
        floorP99: percentile(ms.floor[i]!, 99),
      })),
      ms,
      cpuMsPerJob: cpu,
      postgresRowsPerRound: writes,
      postgresScansPerJob: { seq: total.seqScan / wJobs, idx: total.idxScan / wJobs },
      versionsPerJob: { pglite: liteV, postgres: pgV },
      ...(liteLoopDelay ? { pgliteServiceLoopDelayMs: liteLoopDelay } : {}),
    },
  };
}


