// 5. Memory: the service's peak RSS while a ~1 GB result is exported and copied,
// against its idle RSS, and how long the job takes, with two settings of
// ClickHouse's S3 upload (CHJOB_EXPORT_INFLIGHT_PARTS, s3_max_inflight_parts_for_one_file):
// the service's default (2 parts in flight) and the speed setting (20, ClickHouse's
// own default). No result byte passes through the service's own code; in embedded
// mode chDB and the S3 server share its process, so the floor process (chDB + S3
// server, no service) doing the same job with the same settings is measured too.
// Each round runs all four (service and floor, both settings) in an order that
// turns round by round.
import { loadavg } from "node:os";
import { exportUploadSettings } from "../../src/storage/parts.js";
import { startFloor } from "../floor-process.js";
import { idleRss, mib, sampleRss } from "../rss.js";
import { deleteResult, mustBeDone, serviceJob, startBenchService, type BenchService } from "../service.js";
import { median } from "../stats.js";
import { fmt, serviceUploadSettings, settleDisk, stopBoth, type Row, type Workload } from "../workload.js";

const ROWS = 50_000_000;
export const MEMORY_SQL = `SELECT number AS n, toString(number * 7) AS s FROM numbers(${ROWS})`;

/** The speed setting: ClickHouse's own default for s3_max_inflight_parts_for_one_file. */
const SPEED_INFLIGHT_PARTS = 20;
/** The bar: RSS growth over idle with the default setting (issue 15). */
const BAR_MIB = 160;
/** The bar: throughput lost by the default against the speed setting. */
const BAR_LOSS = 0.05;

interface Round {
  idleMiB: number;
  peakMiB: number;
  growthMiB: number;
  ms: number;
  /** 1-minute load average when the job started. */
  load: number;
}

interface Variant {
  inflight: number;
  service: Round[];
  floor: Round[];
}

export const memory: Workload = {
  name: "memory",
  title: "Memory: a ~1 GB result exported and copied, with the default and 20 upload parts in flight",
  defaultRounds: 4,
  async run(ctx) {
    // The default: what the service runs with unless --env sets CHJOB_EXPORT_INFLIGHT_PARTS.
    const chosen = Number(serviceUploadSettings(ctx).s3_max_inflight_parts_for_one_file);
    const variants: Variant[] = [chosen, SPEED_INFLIGHT_PARTS].map((inflight) => ({ inflight, service: [], floor: [] }));
    const floor = await startFloor(1, ctx.floorNodeArgs);
    const services: BenchService[] = [];
    let size = 0;
    const extra: Record<string, unknown> = {};
    try {
      for (const v of variants) {
        services.push(await startBenchService({ ...ctx.service, env: { ...ctx.service.env, CHJOB_EXPORT_INFLIGHT_PARTS: String(v.inflight) } }));
      }
      // Warm-up with a small job: idle means "has run a job", not "has run a big one".
      for (const svc of services) mustBeDone(await serviceJob(svc.client, { reportId: "bench", queryId: "warm", sql: "SELECT 1" }));
      await floor.jobs([{ reportId: "bench", queryId: "warm", sql: "SELECT 1" }]);
      const spec = { reportId: "bench", queryId: "memory", sql: MEMORY_SQL };
      const measure = async (pid: number, job: () => Promise<number>): Promise<Round> => {
        await settleDisk();
        const load = loadavg()[0]!;
        const idle = await idleRss(pid);
        const sampler = sampleRss(pid, 5);
        const ms = await job();
        const peak = sampler.stop();
        return { idleMiB: mib(idle), peakMiB: mib(peak), growthMiB: mib(peak - idle), ms, load };
      };
      const steps = variants.flatMap((v, i) => [
        async () => {
          const svc = services[i]!;
          v.service.push(
            await measure(svc.pid, async () => {
              const res = await serviceJob(svc.client, spec);
              mustBeDone(res);
              size = Number(res.final.resultSize);
              await deleteResult(svc.s3, res.final);
              return res.ms;
            }),
          );
        },
        async () => {
          const settings = exportUploadSettings(v.inflight);
          v.floor.push(await measure(floor.pid, async () => (await floor.jobs([spec], { deleteResults: true, settings })).timings[0]!.ms));
        },
      ]);
      for (let r = 0; r < ctx.rounds; r++) {
        // Each step goes first in turn, and every other round the order runs backwards.
        const turned = [...steps.slice(r % steps.length), ...steps.slice(0, r % steps.length)];
        for (const step of r % 2 === 0 ? turned : turned.reverse()) await step();
        for (const v of variants) {
          const s = v.service.at(-1)!;
          const f = v.floor.at(-1)!;
          ctx.say(
            `  round ${r + 1}, ${v.inflight} in flight: service RSS ${fmt(s.idleMiB)} -> ${fmt(s.peakMiB)} MiB (+${fmt(s.growthMiB)}) in ${fmt(s.ms / 1000, 2)} s (load ${fmt(s.load, 2)}); ` +
              `floor ${fmt(f.idleMiB)} -> ${fmt(f.peakMiB)} MiB (+${fmt(f.growthMiB)}) in ${fmt(f.ms / 1000, 2)} s (load ${fmt(f.load, 2)})`,
          );
        }
      }
    } finally {
      const [first, ...others] = services;
      for (const svc of others) await svc.stop().catch(() => undefined);
      if (first) await stopBoth(ctx, first, floor, extra);
      else await floor.stop();
    }
    const [def, speed] = variants as [Variant, Variant];
    const worst = (xs: Round[]) => Math.max(...xs.map((x) => x.growthMiB));
    const growthRow = (v: Variant, bar: boolean): Row => {
      // ClickHouse's own growth swings by tens of MiB from round to round: compare round by round.
      const own = v.service.map((x, i) => x.growthMiB - v.floor[i]!.growthMiB);
      const sg = worst(v.service);
      return {
        metric: `peak RSS − idle RSS, ${(size / 1e9).toFixed(2)} GB result, ${v.inflight} parts in flight${v === def ? " (default)" : ""} (worst of ${ctx.rounds}; median ${fmt(median(v.service.map((x) => x.growthMiB)), 0)})`,
        unit: "MiB",
        service: sg,
        floor: worst(v.floor),
        compare: `service − floor, per round: ${own.map((d) => `${d >= 0 ? "+" : ""}${fmt(d, 0)}`).join(" / ")} MiB (median ${fmt(median(own), 0)})`,
        bar: bar ? `≤ ${BAR_MIB} MiB` : "",
        met: bar ? sg <= BAR_MIB : undefined,
      };
    };
    const timeRow = (v: Variant): Row => {
      const s = median(v.service.map((x) => x.ms));
      const f = median(v.floor.map((x) => x.ms));
      return {
        metric: `CreateJob → DONE, ${v.inflight} parts in flight (median; MB/s)`,
        unit: "s",
        service: s / 1000,
        floor: f / 1000,
        compare: `${(s / f).toFixed(3)}×; ${fmt(size / 1e6 / (s / 1000), 0)} vs ${fmt(size / 1e6 / (f / 1000), 0)} MB/s`,
        bar: "",
        met: undefined,
      };
    };
    // Throughput lost with the default against the speed setting: 1 − t(speed) / t(default), per
    // round (the two ran within a minute of each other), then the median.
    const loss = (a: Round[], b: Round[]) => median(a.map((x, i) => 1 - b[i]!.ms / x.ms));
    const sLoss = loss(def.service, speed.service);
    const fLoss = loss(def.floor, speed.floor);
    const pct = (x: number) => `${x >= 0 ? "" : "−"}${fmt(Math.abs(x) * 100, 1)} %`;
    return {
      name: "memory",
      title: this.title,
      rows: [
        growthRow(def, true),
        growthRow(speed, false),
        timeRow(def),
        timeRow(speed),
        {
          metric: `throughput lost with ${def.inflight} parts in flight against ${speed.inflight} (median of per-round 1 − t(${speed.inflight}) / t(${def.inflight}))`,
          unit: "",
          service: pct(sLoss),
          floor: pct(fLoss),
          compare: `per round, service: ${def.service.map((x, i) => pct(1 - speed.service[i]!.ms / x.ms)).join(" / ")}`,
          bar: `≤ ${BAR_LOSS * 100} %`,
          met: sLoss <= BAR_LOSS,
        },
      ],
      details: { ...extra, sql: MEMORY_SQL, resultBytes: size, variants },
    };
  },
};
