import { spawnSync } from "node:child_process";
import type { ClickHouseSettings } from "@clickhouse/client";
import { DEFAULT_EMBEDDED_INFLIGHT_PARTS, exportUploadSettings } from "../src/storage/parts.js";
import type { Floor } from "./floor-process.js";
import type { BenchService, ServiceOptions } from "./service.js";

// What every workload reports: rows of figures (service against floor), whether
// its bar is met, and the raw per-round figures for the JSON.

export interface Row {
  metric: string;
  unit: string;
  service: number | string;
  floor: number | string;
  /** Service against floor: a ratio ("1.01×") or a difference ("+2.3 ms"), or a note. */
  compare: string;
  bar: string;
  /** undefined: informative row with no bar. */
  met: boolean | undefined;
}

export interface WorkloadResult {
  name: string;
  title: string;
  rows: Row[];
  /** Raw figures (per round, per job) for bench/results/latest.json. */
  details: Record<string, unknown>;
}

export interface BenchContext {
  rounds: number;
  /** How to start the service: log level, extra environment (e.g. CHJOB_PROGRESS_INTERVAL), node options, probe. */
  service: ServiceOptions;
  /** Node options for the floor process (e.g. --cpu-prof). */
  floorNodeArgs: string[];
  say(line: string): void;
}

/**
 * The S3 upload settings of the service's exports (part sizes, CHJOB_EXPORT_INFLIGHT_PARTS: its
 * embedded default unless --env sets it), for the floor's exports of big results to match.
 */
export function serviceUploadSettings(ctx: BenchContext): ClickHouseSettings {
  const set = ctx.service.env?.CHJOB_EXPORT_INFLIGHT_PARTS;
  return exportUploadSettings(set === undefined || set === "" ? DEFAULT_EMBEDDED_INFLIGHT_PARTS : Number(set));
}

/** Stops the service and then the floor; notes the service's event-loop delay when the probe ran. */
export async function stopBoth(ctx: BenchContext, svc: BenchService, floor: Floor, details: Record<string, unknown>): Promise<void> {
  try {
    const delay = await svc.stop();
    if (delay) {
      details.serviceLoopDelayMs = delay;
      ctx.say(`  service event-loop delay over its life: p50 ${fmt(delay.p50, 2)} ms, p99 ${fmt(delay.p99, 2)} ms, max ${fmt(delay.max, 1)} ms`);
    }
  } finally {
    await floor.stop();
  }
}

export interface Workload {
  name: string;
  title: string;
  /** Rounds when --rounds is not given. */
  defaultRounds: number;
  run(ctx: BenchContext): Promise<WorkloadResult>;
}

/**
 * Rounds alternate which side goes first, so neither always runs on a warmer
 * (or more fragmented) machine. With `settle`, each side starts once the files
 * the other wrote are on disk: otherwise the second one pays for the first
 * one's writeback (hundreds of MB for the large and memory workloads).
 */
export async function alternate(round: number, service: () => Promise<void>, floor: () => Promise<void>, settle = false): Promise<void> {
  const [first, second] = round % 2 === 0 ? [service, floor] : [floor, service];
  if (settle) await settleDisk();
  await first();
  if (settle) await settleDisk();
  await second();
}

/** Flushes dirty pages (sync) and lets the machine rest a moment. */
export async function settleDisk(): Promise<void> {
  spawnSync("sync");
  await new Promise((r) => setTimeout(r, 300));
}

/** A workload that needs PostgreSQL and found none: one row saying so. */
export function skippedForPostgres(name: string, title: string, why: string): WorkloadResult {
  return {
    name,
    title,
    rows: [{ metric: "skipped: no PostgreSQL server (BENCH_DATABASE_URL)", unit: "", service: why, floor: "", compare: "", bar: "", met: undefined }],
    details: { skipped: why },
  };
}

export const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
export const ratio = (s: number, f: number) => `${(s / f).toFixed(3)}×`;
export const diff = (s: number, f: number, unit = "ms") => `${s - f >= 0 ? "+" : ""}${(s - f).toFixed(1)} ${unit}`;
