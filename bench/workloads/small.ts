// 2. Small jobs: `SELECT 1`, 200 in a row, CreateJob -> DONE on WatchJob,
// against the same export + one CopyObject with no service.
import { cpuWindow } from "../cpu.js";
import { startFloor } from "../floor-process.js";
import type { JobSpec } from "../protocol.js";
import { runJobsInTurn, startBenchService } from "../service.js";
import { median, percentile } from "../stats.js";
import { alternate, diff, fmt, stopBoth, type Workload } from "../workload.js";

const JOBS = 200;
const WARMUP = 20;

export const small: Workload = {
  name: "small",
  title: `Small jobs: SELECT 1, ${JOBS} in a row`,
  defaultRounds: 5,
  async run(ctx) {
    const floor = await startFloor(1, ctx.floorNodeArgs);
    const svc = await startBenchService(ctx.service);
    // One (report, query) pair per job, as distinct reports would be.
    const specs = (tag: string): JobSpec[] => Array.from({ length: JOBS }, (_, i) => ({ reportId: "bench", queryId: `${tag}-${i}`, sql: "SELECT 1" }));
    const service: number[][] = [];
    const floors: number[][] = [];
    const floorHead: number[] = [];
    const floorExport: number[] = [];
    const floorCopy: number[] = [];
    const serviceCpu: number[] = [];
    const clientCpu: number[] = [];
    const floorCpu: number[] = [];
    const runService = (jobs: JobSpec[]) => runJobsInTurn(svc.client, jobs);
    const extra: Record<string, unknown> = {};
    try {
      await runService(specs("warm").slice(0, WARMUP));
      await floor.jobs(specs("warm").slice(0, WARMUP), { head: true });
      for (let r = 0; r < ctx.rounds; r++) {
        await alternate(
          r,
          async () => {
            const cpu = cpuWindow(svc.pid);
            service.push(await runService(specs(`s${r}`)));
            const spent = cpu();
            serviceCpu.push(spent.processMs / JOBS);
            clientCpu.push(spent.benchMs / JOBS);
          },
          async () => {
            const { timings, cpuMs } = await floor.jobs(specs(`f${r}`));
            floorCpu.push(cpuMs / JOBS);
            floors.push(timings.map((t) => t.ms));
            floorExport.push(...timings.map((t) => t.exportMs));
            floorCopy.push(...timings.map((t) => t.copyMs));
          },
        );
        ctx.say(`  round ${r + 1}: p50 service ${fmt(median(service.at(-1)!))} ms, floor ${fmt(median(floors.at(-1)!))} ms`);
      }
      // What a HeadObject (the service's size check) costs here, outside the measured rounds.
      floorHead.push(...(await floor.jobs(specs("head").slice(0, 100), { head: true })).timings.map((t) => t.headMs));
    } finally {
      await stopBoth(ctx, svc, floor, extra);
    }
    const all = (xs: number[][]) => xs.flat();
    const s50 = median(all(service));
    const f50 = median(all(floors));
    const s99 = percentile(all(service), 99);
    const f99 = percentile(all(floors), 99);
    const n = JOBS * ctx.rounds;
    return {
      name: "small",
      title: this.title,
      rows: [
        { metric: `p50 CreateJob → DONE (${n} jobs)`, unit: "ms", service: s50, floor: f50, compare: diff(s50, f50), bar: "overhead ≤ 5 ms", met: s50 - f50 <= 5 },
        { metric: `p99 CreateJob → DONE (${n} jobs)`, unit: "ms", service: s99, floor: f99, compare: diff(s99, f99), bar: "", met: undefined },
        {
          metric: "CPU per job (all threads; service + its gRPC client)",
          unit: "ms",
          service: `${fmt(median(serviceCpu))} + ${fmt(median(clientCpu))} ms`,
          floor: median(floorCpu),
          compare: diff(median(serviceCpu), median(floorCpu)) + " (service process)",
          bar: "",
          met: undefined,
        },
        {
          metric: "floor parts, p50: export / CopyObject (/ a HeadObject, not in the floor)",
          unit: "ms",
          service: "",
          floor: `${fmt(median(floorExport))} / ${fmt(median(floorCopy))} / ${fmt(median(floorHead))}`,
          compare: "",
          bar: "",
          met: undefined,
        },
      ],
      details: {
        ...extra,
        jobs: JOBS,
        perRound: service.map((s, i) => ({ serviceP50: median(s), serviceP99: percentile(s, 99), floorP50: median(floors[i]!), floorP99: percentile(floors[i]!, 99) })),
        serviceMs: service,
        floorMs: floors,
        floorExportP50: median(floorExport),
        floorCopyP50: median(floorCopy),
        floorHeadP50: median(floorHead),
        serviceCpuMsPerJob: serviceCpu,
        clientCpuMsPerJob: clientCpu,
        floorCpuMsPerJob: floorCpu,
      },
    };
  },
};
