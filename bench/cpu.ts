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
  streams: { count: number; lastWriteSpreadMs: number };
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
