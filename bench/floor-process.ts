// Parent side of the floor: spawns bench/floor.js as its own process (chDB binds
// one data path per process; the libuv pool is sized before it starts, as
// src/cli/launch.cts does for the service) and talks to it over IPC.
import { fork, type ChildProcess } from "node:child_process";
import type { ClickHouseSettings } from "@clickhouse/client";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanEnv, QUIET_ENV } from "../test/support/service.js";
import type { FloorJobTiming, FloorRequest, FloorResponse, JobSpec } from "./protocol.js";

const FLOOR = join(dirname(fileURLToPath(import.meta.url)), "floor.js");

export interface Floor {
  pid: number;
  s3Endpoint: string;
  clickhouseVersion: string;
  /** Runs jobs; `cpuMs` is the floor process's CPU over them (all threads, deletes of results left out). */
  jobs(jobs: JobSpec[], opts?: { concurrency?: number; head?: boolean; deleteResults?: boolean; settings?: ClickHouseSettings }): Promise<{ timings: FloorJobTiming[]; wallMs: number; cpuMs: number }>;
  stop(): Promise<void>;
}

/** `nodeArgs`: node options for the floor process, e.g. ["--cpu-prof", "--cpu-prof-dir=DIR"]. */
export async function startFloor(sessions: number, nodeArgs: string[] = []): Promise<Floor> {
  const child: ChildProcess = fork(FLOOR, [], {
    execArgv: nodeArgs,
    // As many pool threads as the service's launcher gives it with the default 8 slots (8 + 1 + 8), or more.
    env: { ...cleanEnv(), ...QUIET_ENV, UV_THREADPOOL_SIZE: String(Math.max(8, sessions) + 1 + 8) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let pending: { resolve: (r: FloorResponse) => void; reject: (e: Error) => void } | undefined;
  child.on("message", (res: FloorResponse) => {
    const p = pending;
    pending = undefined;
    if (!p) return;
    if (res.op === "error") p.reject(new Error(`floor: ${res.message}`));
    else p.resolve(res);
  });
  void exited.then(() => pending?.reject(new Error("the floor process exited")));
  const ask = <Op extends FloorResponse["op"]>(req: FloorRequest): Promise<Extract<FloorResponse, { op: Op }>> =>
    new Promise((resolve, reject) => {
      if (pending) return reject(new Error("floor: one request at a time"));
      pending = { resolve: resolve as (r: FloorResponse) => void, reject };
      child.send(req);
    });
  const init = await ask<"init">({ op: "init", sessions });
  return {
    pid: init.pid,
    s3Endpoint: init.s3Endpoint,
    clickhouseVersion: init.clickhouseVersion,
    jobs: async (jobs, opts = {}) => {
      const res = await ask<"jobs">({ op: "jobs", jobs, concurrency: opts.concurrency ?? 1, head: opts.head ?? false, deleteResults: opts.deleteResults ?? false, ...(opts.settings ? { settings: opts.settings } : {}) });
      return { timings: res.timings, wallMs: res.wallMs, cpuMs: res.cpuMs };
    },
    stop: async () => {
      if (child.exitCode === null) {
        await ask<"stop">({ op: "stop" }).catch(() => undefined);
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
