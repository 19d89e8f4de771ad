// 3. Fan-out: 1,000 WatchJob streams on one job. Every stream must receive DONE
// within 100 ms of the first, and the service's RSS must grow by less than 64 MB.
import { performance } from "node:perf_hooks";
import { JobStatus, type Job } from "../../gen/chjob/v1/job_service_pb.js";
import { JobClient } from "../../src/client.js";
import { startFloor } from "../floor-process.js";
import { idleRss, mib, sampleRss } from "../rss.js";
import { mustBeDone, noStatusSkipped, serviceJob, startBenchService, TERMINAL } from "../service.js";
import { median } from "../stats.js";
import { fmt, stopBoth, type Workload } from "../workload.js";

const WATCHERS = 1000;
/** Watchers come over this many HTTP/2 connections (many clients, as in real use). */
const CONNECTIONS = 10;
/** A job that runs long enough (3 s) for every watcher to join while it runs, and uses little memory itself. */
const SQL = "SELECT sleepEachRow(1) AS x FROM numbers(3) SETTINGS max_block_size = 1";



interface Watcher {
  firstAt: number;
  firstStatus: JobStatus;
  doneAt: number;
  statuses: JobStatus[];
}

export const fanout: Workload = {
  name: "fanout",
  title: `Fan-out: ${WATCHERS} WatchJob streams on one job`,
  defaultRounds: 5,
  async run(ctx) {
    const floor = await startFloor(1, ctx.floorNodeArgs);
    // The probe also tells when the service wrote each stream's last message: the server's side of the spread.
    const svc = await startBenchService({ ...ctx.service, probe: true });
    // Separate subchannels: one connection per client.
    const clients = Array.from({ length: CONNECTIONS }, () => new JobClient(svc.grpcAddress, { channelOptions: { "grpc.use_local_subchannel_pool": 1 } }));
    const rounds: Array<{
      spreadMs: number;
      /** Spread of the service's last write (DONE) to each stream: its share of spreadMs. */
      serverSpreadMs: number;
      serverStreams: number;
      firstDoneMs: number;
      lastDoneMs: number;
      attachMs: number;
      idleMiB: number;
      peakMiB: number;
      growthMiB: number;
      oneWatcherGrowthMiB: number;
      lateJoiners: number;
      skipped: number;
      floorMs: number;
    }> = [];
    const extra: Record<string, unknown> = {};
    try {
      await Promise.all(clients.map((c) => c.waitForReady(10_000)));
      // Warm-up: the code paths of a job and of a few watchers.
      mustBeDone(await serviceJob(svc.client, { reportId: "bench", queryId: "warm", sql: "SELECT 1" }));
      await floor.jobs([{ reportId: "bench", queryId: "fan", sql: SQL }]);
      for (let r = 0; r < ctx.rounds; r++) {
        // The same job with a single watcher: what the job itself costs in RSS.
        let idle = await idleRss(svc.pid);
        let sampler = sampleRss(svc.pid);
        mustBeDone(await serviceJob(svc.client, { reportId: "bench", queryId: `one-${r}`, sql: SQL }));
        const oneWatcherGrowth = sampler.stop() - idle;

        idle = await idleRss(svc.pid);
        sampler = sampleRss(svc.pid);
        const t0 = performance.now();
        const created = await clients[0]!.createJob({ reportId: "bench", queryId: `fan-${r}`, queryText: SQL });
        let joined = 0;
        let allJoined!: () => void;
        const joinedAll = new Promise<void>((resolve) => (allJoined = resolve));
        const watching = Promise.all(
          // One process plays 1,000 clients, so each reads its stream the cheap way: 'data' events on
          // the call (an async iterator per stream costs this one process several times more CPU).
          Array.from(
            { length: WATCHERS },
            (_, i): Promise<Watcher> =>
              new Promise((resolve, reject) => {
                const w: Watcher = { firstAt: NaN, firstStatus: JobStatus.UNSPECIFIED, doneAt: NaN, statuses: [] };
                const { call } = clients[i % CONNECTIONS]!.watchJob(created.id);
                call.on("data", ({ job }: { job?: Job }) => {
                  const now = performance.now();
                  if (!job) return reject(new Error("a WatchJob message without a job"));
                  if (w.statuses.length === 0) {
                    w.firstAt = now;
                    w.firstStatus = job.status;
                    if (++joined === WATCHERS) allJoined();
                  }
                  if (w.statuses.at(-1) !== job.status) w.statuses.push(job.status);
                  if (TERMINAL.has(job.status)) {
                    w.doneAt = now;
                    if (job.status !== JobStatus.DONE) reject(new Error(`fan-out job ended ${JobStatus[job.status]}: ${job.error}`));
                  }
                });
                call.on("end", () => resolve(w));
                call.on("error", reject);
              }),
          ),
        );
        // From here the probe counts only what the service writes for the rest of the job (DONE above all).
        await Promise.race([joinedAll, watching]);
        await svc.probe();
        const watchers = await watching;
        const server = (await svc.probe()).streams;
        const peak = sampler.stop();
        const done = watchers.map((w) => w.doneAt);
        if (done.some((d) => !Number.isFinite(d))) throw new Error("a watcher ended without DONE");
        const first = Math.min(...done);
        const last = Math.max(...done);
        const { timings } = await floor.jobs([{ reportId: "bench", queryId: "fan", sql: SQL }]);
        rounds.push({
          spreadMs: last - first,
          serverSpreadMs: server.lastWriteSpreadMs,
          serverStreams: server.count,
          firstDoneMs: first - t0,
          lastDoneMs: last - t0,
          attachMs: Math.max(...watchers.map((w) => w.firstAt)) - t0,
          idleMiB: mib(idle),
          peakMiB: mib(peak),
          growthMiB: mib(peak - idle),
          oneWatcherGrowthMiB: mib(oneWatcherGrowth),
          // Joined after DONE (then they see only DONE): the spread would not be measured on them.
          lateJoiners: watchers.filter((w) => w.firstStatus === JobStatus.DONE).length,
          skipped: watchers.filter((w) => !noStatusSkipped(w.statuses)).length,
          floorMs: timings[0]!.ms,
        });
        const x = rounds.at(-1)!;
        ctx.say(
          `  round ${r + 1}: DONE spread ${fmt(x.spreadMs)} ms (service's writes ${fmt(x.serverSpreadMs)} ms; first ${fmt(x.firstDoneMs, 0)} ms, all joined by ${fmt(x.attachMs, 0)} ms), ` +
            `RSS ${fmt(x.idleMiB)} -> ${fmt(x.peakMiB)} MiB (+${fmt(x.growthMiB)}; one watcher +${fmt(x.oneWatcherGrowthMiB)}), floor ${fmt(x.floorMs, 0)} ms`,
        );
      }
    } finally {
      clients.forEach((c) => c.close());
      await stopBoth(ctx, svc, floor, extra);
    }
    const worstSpread = Math.max(...rounds.map((x) => x.spreadMs));
    const worstGrowth = Math.max(...rounds.map((x) => x.growthMiB));
    const late = rounds.reduce((a, x) => a + x.lateJoiners, 0);
    const skipped = rounds.reduce((a, x) => a + x.skipped, 0);
    return {
      name: "fanout",
      title: this.title,
      rows: [
        {
          metric: `DONE spread over ${WATCHERS} streams (median; worst of ${ctx.rounds})`,
          unit: "",
          service: `${fmt(median(rounds.map((x) => x.spreadMs)))} ms; ${fmt(worstSpread)} ms`,
          floor: "",
          compare: "",
          bar: "≤ 100 ms",
          met: worstSpread <= 100 && late === 0,
        },
        {
          metric: `of which the service: spread of its last write to each stream (median; worst)`,
          unit: "",
          service: `${fmt(median(rounds.map((x) => x.serverSpreadMs)))} ms; ${fmt(Math.max(...rounds.map((x) => x.serverSpreadMs)))} ms`,
          floor: "",
          compare: "the rest is the one client process reading 1,000 streams",
          bar: "",
          met: undefined,
        },
        {
          metric: "CreateJob → first / last DONE (median)",
          unit: "",
          service: `${fmt(median(rounds.map((x) => x.firstDoneMs)), 0)} / ${fmt(median(rounds.map((x) => x.lastDoneMs)), 0)} ms`,
          floor: `${fmt(median(rounds.map((x) => x.floorMs)), 0)} ms`,
          compare: `${(median(rounds.map((x) => x.lastDoneMs)) / median(rounds.map((x) => x.floorMs))).toFixed(3)}× (last)`,
          bar: "",
          met: undefined,
        },
        {
          metric: `service RSS growth, ${WATCHERS} watchers (median; worst)`,
          unit: "",
          service: `${fmt(median(rounds.map((x) => x.growthMiB)))} MiB; ${fmt(worstGrowth)} MiB`,
          floor: `one watcher: ${fmt(median(rounds.map((x) => x.oneWatcherGrowthMiB)))} MiB`,
          compare: `idle ${fmt(median(rounds.map((x) => x.idleMiB)))} MiB`,
          bar: "< 64 MB",
          met: worstGrowth * 1024 * 1024 < 64e6,
        },
        {
          metric: "watchers with a status skipped / joined after DONE",
          unit: "",
          service: `${skipped} / ${late}`,
          floor: "",
          compare: "",
          bar: "0 / 0",
          met: skipped === 0 && late === 0,
        },
      ],
      details: {
        ...extra, watchers: WATCHERS, connections: CONNECTIONS, sql: SQL, rounds },
    };
  },
};
