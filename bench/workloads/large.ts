// 1. Large export: 5,000,000 rows × 2 columns (about 90 MB of CSV), CreateJob ->
// DONE on WatchJob, against the same export + one CopyObject with no service.
import { cpuWindow } from "../cpu.js";
import { startFloor } from "../floor-process.js";
import { deleteResult, mustBeDone, serviceJob, startBenchService } from "../service.js";
import { median } from "../stats.js";
import { alternate, fmt, ratio, serviceUploadSettings, stopBoth, type Workload } from "../workload.js";

export const LARGE_SQL = "SELECT number AS n, toString(number * 7) AS s FROM numbers(5000000)";

export const large: Workload = {
  name: "large",
  title: "Large export: 5,000,000 rows × 2 columns",
  defaultRounds: 10,
  async run(ctx) {
    const floor = await startFloor(1, ctx.floorNodeArgs);
    const svc = await startBenchService(ctx.service);
    const spec = { reportId: "bench", queryId: "large", sql: LARGE_SQL };
    // The floor uploads as the service does (parts in flight included).
    const settings = serviceUploadSettings(ctx);
    const service: number[] = [];
    const floors: number[] = [];
    const floorExport: number[] = [];
    const floorCopy: number[] = [];
    const serviceCpu: number[] = [];
    const clientCpu: number[] = [];
    const floorCpu: number[] = [];
    let size = 0;
    let floorSize = 0;
    const extra: Record<string, unknown> = {};
    try {
      // Warm-up, not counted: the first big export pays for page cache and allocator growth.
      const warm = await serviceJob(svc.client, spec);
      mustBeDone(warm);
      await deleteResult(svc.s3, warm.final);
      await floor.jobs([spec], { head: true, deleteResults: true, settings });
      for (let r = 0; r < ctx.rounds; r++) {
        await alternate(
          r,
          async () => {
            const cpu = cpuWindow(svc.pid);
            const res = await serviceJob(svc.client, spec);
            const spent = cpu();
            mustBeDone(res);
            size = Number(res.final.resultSize);
            service.push(res.ms);
            serviceCpu.push(spent.processMs);
            clientCpu.push(spent.benchMs);
            await deleteResult(svc.s3, res.final);
          },
          async () => {
            const { timings, cpuMs } = await floor.jobs([spec], { head: true, deleteResults: true, settings });
            floorCpu.push(cpuMs);
            const t = timings[0]!;
            floors.push(t.ms);
            floorExport.push(t.exportMs);
            floorCopy.push(t.copyMs);
            floorSize = t.size;
          },
          true,
        );
        ctx.say(`  round ${r + 1}: service ${fmt(service.at(-1)!, 0)} ms, floor ${fmt(floors.at(-1)!, 0)} ms`);
      }
    } finally {
      await stopBoth(ctx, svc, floor, extra);
    }
    if (size !== floorSize) throw new Error(`result sizes differ: service ${size}, floor ${floorSize}`);
    const s = median(service);
    const f = median(floors);
    return {
      name: "large",
      title: this.title,
      rows: [
        {
          metric: `CreateJob → DONE (${(size / 1e6).toFixed(0)} MB CSV), median of ${ctx.rounds}`,
          unit: "ms",
          service: s,
          floor: f,
          compare: ratio(s, f),
          bar: "ratio ≤ 1.03",
          met: s / f <= 1.03,
        },
        {
          metric: "CPU per job (all threads; service + its gRPC client)",
          unit: "ms",
          service: `${fmt(median(serviceCpu), 0)} + ${fmt(median(clientCpu), 0)} ms`,
          floor: median(floorCpu),
          compare: ratio(median(serviceCpu) + median(clientCpu), median(floorCpu)),
          bar: "",
          met: undefined,
        },
      ],
      details: {
        ...extra, sql: LARGE_SQL, resultBytes: size, serviceMs: service, floorMs: floors, floorExportMs: floorExport, floorCopyMs: floorCopy, serviceCpuMs: serviceCpu, clientCpuMs: clientCpu, floorCpuMs: floorCpu },
    };
  },
};
