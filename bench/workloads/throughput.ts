// 4. Throughput: 500 jobs submitted at once with the default slots (8); every
// one watched to its end. Against the floor: the same 500 exports + copies, 8 at a time.
import { performance } from "node:perf_hooks";
import { JobStatus } from "../../gen/chjob/v1/job_service_pb.js";
import { cpuWindow } from "../cpu.js";
import { startFloor } from "../floor-process.js";
import type { JobSpec } from "../protocol.js";
import { noStatusSkipped, serviceJob, startBenchService, watchToEnd, type ServiceJobResult } from "../service.js";
import { median } from "../stats.js";
import { alternate, fmt, ratio, stopBoth, type Workload } from "../workload.js";

const JOBS = 500;
const SLOTS = 8;

export const throughput: Workload = {
  name: "throughput",
  title: `Throughput: ${JOBS} SELECT 1 jobs at once, ${SLOTS} slots`,
  defaultRounds: 5,
  async run(ctx) {
    const floor = await startFloor(SLOTS, ctx.floorNodeArgs);
    // The default slots (CHJOB_MAX_CONCURRENT_JOBS unset: 8).
    const svc = await startBenchService(ctx.service);
    const specs = (tag: string): JobSpec[] => Array.from({ length: JOBS }, (_, i) => ({ reportId: "bench", queryId: `${tag}-${i}`, sql: "SELECT 1" }));
    const service: number[] = [];
    const floors: number[] = [];
    const serviceCpu: number[] = [];
    const clientCpu: number[] = [];
    const floorCpu: number[] = [];
    let notDone = 0;
    let skipped = 0;
    let noTerminal = 0;
    const extra: Record<string, unknown> = {};
    try {
      for (const spec of specs("warm").slice(0, 16)) await serviceJob(svc.client, spec);
      await floor.jobs(specs("warm").slice(0, 16), { concurrency: SLOTS });
      for (let r = 0; r < ctx.rounds; r++) {
        await alternate(
          r,
          async () => {
            const cpu = cpuWindow(svc.pid);
            const t0 = performance.now();
            const results = await Promise.all(
              specs(`s${r}`).map(async (spec): Promise<ServiceJobResult | undefined> => {
                const created = await svc.client.createJob({ reportId: spec.reportId, queryId: spec.queryId, queryText: spec.sql });
                return watchToEnd(svc.client, created.id, t0).catch(() => undefined);
              }),
            );
            service.push(Math.max(...results.map((x) => x?.ms ?? 0)));
            const spent = cpu();
            serviceCpu.push(spent.processMs / JOBS);
            clientCpu.push(spent.benchMs / JOBS);
            noTerminal += results.filter((x) => !x).length;
            notDone += results.filter((x) => x && x.final.status !== JobStatus.DONE).length;
            skipped += results.filter((x) => x && !noStatusSkipped(x.statuses)).length;
          },
          async () => {
            const { wallMs, cpuMs } = await floor.jobs(specs(`f${r}`), { concurrency: SLOTS });
            floors.push(wallMs);
            floorCpu.push(cpuMs / JOBS);
          },
        );
        ctx.say(`  round ${r + 1}: service ${fmt((JOBS / service.at(-1)!) * 1000)} jobs/s, floor ${fmt((JOBS / floors.at(-1)!) * 1000)} jobs/s`);
      }
    } finally {
      await stopBoth(ctx, svc, floor, extra);
    }
    const s = median(service);
    const f = median(floors);
    const ok = notDone === 0 && skipped === 0 && noTerminal === 0;
    return {
      name: "throughput",
      title: this.title,
      rows: [
        {
          metric: `jobs/s, ${JOBS} submitted at once (median)`,
          unit: "jobs/s",
          service: (JOBS / s) * 1000,
          floor: (JOBS / f) * 1000,
          compare: `time ${ratio(s, f)}`,
          bar: "time ≤ 1.15×",
          met: s <= 1.15 * f,
        },
        {
          metric: "CPU per job (all threads; service + its gRPC client)",
          unit: "ms",
          service: `${fmt(median(serviceCpu))} + ${fmt(median(clientCpu))} ms`,
          floor: median(floorCpu),
          compare: `${fmt(median(serviceCpu) - median(floorCpu))} ms more (service process)`,
          bar: "",
          met: undefined,
        },
        {
          metric: `jobs not DONE / watchers with no terminal status / with a status skipped (of ${JOBS * ctx.rounds})`,
          unit: "",
          service: `${notDone} / ${noTerminal} / ${skipped}`,
          floor: "",
          compare: "",
          bar: "0 / 0 / 0",
          met: ok,
        },
      ],
      details: {
        ...extra, jobs: JOBS, slots: SLOTS, serviceWallMs: service, floorWallMs: floors, serviceCpuMsPerJob: serviceCpu, clientCpuMsPerJob: clientCpu, floorCpuMsPerJob: floorCpu, notDone, noTerminal, skipped },
    };
  },
};
