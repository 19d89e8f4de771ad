// CPU time of a process (all its threads), from /proc/<pid>/stat, and of the
// event loop's delay in the service when it runs with the probe (bench/probe.cts).
import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** utime + stime of `pid`, ms. */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

export const PROBE = join(dirname(fileURLToPath(import.meta.url)), "probe.cjs");

export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ProbeReport {
  loopDelayMs: LoopDelay;
  /** HTTP/2 streams the service wrote to, and the spread of their last writes (ms). */
  streams: {
    count: number;
    lastWriteSpreadMs: number;
    /** The earliest and the latest of those last writes on the machine's monotonic clock (process.hrtime), ms; absent with no stream. */
    lastWriteMonoMs?: { first: number; last: number };
    /** When the median, 90th and 99th percentile stream got its last write, after the first stream did, ms. */
    lastWriteQuantilesMs?: { p50: number; p90: number; p99: number };
  };
}

/** Asks the probe in `pid` for the loop delay since the last ask (and resets it). */
export async function readProbe(pid: number, file: string): Promise<LoopDelay> {
  return (await readProbeReport(pid, file)).loopDelayMs;
}

/** Asks the probe in `pid` what it saw since the last ask (and resets it). */
export async function readProbeReport(pid: number, file: string): Promise<ProbeReport> {
  rmSync(file, { force: true });
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 10));
    if (!existsSync(file)) continue;
    try {
      return JSON.parse(readFileSync(file, "utf8")) as ProbeReport;
    } catch {
      // half-written; read again
    }
  }
  throw new Error("the probe did not answer (was the service started with --probe?)");
}

export interface CpuSpent {
  /** CPU of the measured process (all its threads), ms. */
  processMs: number;
  /** CPU of this bench process meanwhile (the gRPC client's work, for the service), ms. */
  benchMs: number;
}

/** Starts counting CPU of `pid` and of this process; call the result to stop. */
export function cpuWindow(pid: number): () => CpuSpent {
  const p0 = cpuMsOf(pid);
  const b0 = process.cpuUsage();
  return () => {
    const b = process.cpuUsage(b0);
    return { processMs: cpuMsOf(pid) - p0, benchMs: (b.user + b.system) / 1000 };
  };
}

/** CPU of processes sampled over time: [process.hrtime ms, CPU ms] every `everyMs`, per pid. */
export interface CpuTimeline {
  stop(): void;
  /** CPU of `pid` between two process.hrtime instants (ms), from the samples around them. */
  between(pid: number, fromMs: number, toMs: number): number;
}

export function cpuTimeline(pids: number[], everyMs = 10): CpuTimeline {
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  const samples = new Map<number, Array<[number, number]>>(pids.map((p) => [p, []]));
  const take = () => {
    for (const [pid, xs] of samples) {
      try {
        xs.push([now(), cpuMsOf(pid)]);
      } catch {
        // gone
      }
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
    },
    between(pid, fromMs, toMs) {
      const xs = samples.get(pid) ?? [];
      const before = xs.filter(([t]) => t <= fromMs).at(-1) ?? xs[0];
      const after = xs.find(([t]) => t >= toMs) ?? xs.at(-1);
      return before && after ? after[1] - before[1] : NaN;
    },
  };
}
