// 5. Memory: the service's peak RSS while a ~1 GB result is exported and copied,
// against its idle RSS. No result byte passes through the service's own code;
// in embedded mode chDB and the S3 server share its process, so the floor
// process (chDB + S3 server, no service) doing the same job is measured too.
import { startFloor } from "../floor-process.js";
import { idleRss, mib, sampleRss } from "../rss.js";
import { deleteResult, mustBeDone, serviceJob, startBenchService } from "../service.js";
import { median } from "../stats.js";
import { alternate, fmt, ratio, stopBoth, type Workload } from "../workload.js";

const ROWS = 50_000_000;
export const MEMORY_SQL = `SELECT number AS n, toString(number * 7) AS s FROM numbers(${ROWS})`;



interface Round {
  idleMiB: number;
  peakMiB: number;
  growthMiB: number;
  ms: number;
}

export const memory: Workload = {
  name: "memory",
  title: "Memory: a ~1 GB result exported and copied",
  defaultRounds: 3,
  async run(ctx) {
    const floor = await startFloor(1, ctx.floorNodeArgs);
    const svc = await startBenchService(ctx.service);
    const spec = { reportId: "bench", queryId: "memory", sql: MEMORY_SQL };
    const service: Round[] = [];
    const floors: Round[] = [];
    let size = 0;
    const extra: Record<string, unknown> = {};
    try {
      // Warm-up with a small job: idle means "has run a job", not "has run a big one".
      mustBeDone(await serviceJob(svc.client, { reportId: "bench", queryId: "warm", sql: "SELECT 1" }));
      await floor.jobs([{ reportId: "bench", queryId: "warm", sql: "SELECT 1" }]);
      for (let r = 0; r < ctx.rounds; r++) {
        await alternate(
          r,
          async () => {
            const idle = await idleRss(svc.pid);
            const sampler = sampleRss(svc.pid, 5);
            const res = await serviceJob(svc.client, spec);
            const peak = sampler.stop();
            mustBeDone(res);
            size = Number(res.final.resultSize);
            await deleteResult(svc.s3, res.final);
            service.push({ idleMiB: mib(idle), peakMiB: mib(peak), growthMiB: mib(peak - idle), ms: res.ms });
          },
          async () => {
            const idle = await idleRss(floor.pid);
            const sampler = sampleRss(floor.pid, 5);
            const { timings } = await floor.jobs([spec], { deleteResults: true });
            const peak = sampler.stop();
            floors.push({ idleMiB: mib(idle), peakMiB: mib(peak), growthMiB: mib(peak - idle), ms: timings[0]!.ms });
          },
          true,
        );
        const s = service.at(-1)!;
        const f = floors.at(-1)!;
        ctx.say(
          `  round ${r + 1}: service RSS ${fmt(s.idleMiB)} -> ${fmt(s.peakMiB)} MiB (+${fmt(s.growthMiB)}) in ${fmt(s.ms / 1000)} s; ` +
            `floor ${fmt(f.idleMiB)} -> ${fmt(f.peakMiB)} MiB (+${fmt(f.growthMiB)}) in ${fmt(f.ms / 1000)} s`,
        );
      }
    } finally {
      await stopBoth(ctx, svc, floor, extra);
    }
    const sg = Math.max(...service.map((x) => x.growthMiB));
    const fg = Math.max(...floors.map((x) => x.growthMiB));
    // ClickHouse's own growth swings by tens of MiB from round to round: compare round by round.
    const own = service.map((x, i) => x.growthMiB - floors[i]!.growthMiB);
    const sMs = median(service.map((x) => x.ms));
    const fMs = median(floors.map((x) => x.ms));
    return {
      name: "memory",
      title: this.title,
      rows: [
        {
          metric: `peak RSS − idle RSS, ${(size / 1e9).toFixed(2)} GB result (worst of ${ctx.rounds})`,
          unit: "MiB",
          service: sg,
          floor: fg,
          compare: `service − floor, per round: ${own.map((d) => `${d >= 0 ? "+" : ""}${fmt(d, 0)}`).join(" / ")} MiB (median ${fmt(median(own), 0)})`,
          bar: "≤ 64 MB",
          met: sg * 1024 * 1024 <= 64e6,
        },
        { metric: "CreateJob → DONE (median)", unit: "s", service: sMs / 1000, floor: fMs / 1000, compare: ratio(sMs, fMs), bar: "", met: undefined },
      ],
      details: {
        ...extra, sql: MEMORY_SQL, resultBytes: size, service, floor: floors },
    };
  },
};
