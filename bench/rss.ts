// Resident set size of another process, from /proc/<pid>/status (VmRSS), and a
// sampler that keeps the peak while a workload runs.
import { readFileSync } from "node:fs";
import { median } from "./stats.js";

const MIB = 1024 * 1024;

/** VmRSS of `pid`, in bytes. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

export const mib = (bytes: number) => bytes / MIB;

/** Median of a few VmRSS samples of a process at rest, in bytes. */
export async function idleRss(pid: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) {
    xs.push(rssOf(pid));
    await new Promise((r) => setTimeout(r, 100));
  }
  return median(xs);
}

export interface RssSampler {
  /** Highest VmRSS seen so far, bytes. */
  readonly peak: number;
  readonly samples: number;
  stop(): number;
}

/** Samples VmRSS every `everyMs` until stopped; returns the peak. */
export function sampleRss(pid: number, everyMs = 10): RssSampler {
  let peak = rssOf(pid);
  let samples = 1;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid));
      samples++;
    } catch {
      // the process has gone; keep what was seen
    }
  }, everyMs);
  return {
    get peak() {
      return peak;
    },
    get samples() {
      return samples;
    },
    stop() {
      clearInterval(timer);
      try {
        peak = Math.max(peak, rssOf(pid));
      } catch {
        // gone
      }
      return peak;
    },
  };
}
