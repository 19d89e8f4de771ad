// The service side of the bench: the real `chjob serve` as its own process
// (src/cli/launch.cts), embedded chDB and embedded S3 like the floor's,
// and a job timed as a client sees it: CreateJob -> DONE on WatchJob.
import { performance } from "node:perf_hooks";
import { DeleteObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { JobClient } from "../src/client.js";
import { seedJobStore } from "../test/support/pglite-template.js";
import { parseS3Uri, s3Client } from "../test/support/s3.js";
import { freePort } from "../test/support/ports.js";
import { cleanEnv, MAIN, QUIET_ENV } from "../test/support/service.js";
import { PROBE, readProbe, readProbeReport, type LoopDelay, type ProbeReport } from "./cpu.js";
import type { JobSpec } from "./protocol.js";
import { S3_KEY_ID, S3_SECRET } from "./protocol.js";

export interface BenchService {
  pid: number;
  grpcAddress: string;
  /** The S3 server it uses: its embedded one, or AWS_ENDPOINT when its environment sets one. */
  s3Endpoint: string;
  client: JobClient;
  s3: S3Client;
  /** Its CHJOB_DATA_DIR (engine, embedded S3, embedded job store under `jobs/`), absolute. */
  dataDir: string;
  /** Spawn -> the health check's first SERVING answer, ms (polled every ServiceOptions.readyPollMs). */
  startMs: number;
  /** Bytes the service wrote to stdout (its log). */
  readonly logBytes: number;
  /** Its log lines, when started with keepLog. */
  readonly logLines: string[];
  /** With the probe: what it saw since the last call (or since start) — and it starts over. */
  probe(): Promise<ProbeReport>;
  /** Stops it; with the probe, answers the event loop's delay over its life. */
  stop(): Promise<LoopDelay | undefined>;
  /** SIGKILL (a crash): waits for the exit and closes the clients; removes the working directory unless keepData. */
  kill(): Promise<void>;
  /** With keepData: removes its working directory (after stop). */
  removeData(): void;
}

export interface ServiceOptions {
  logLevel: string;
  env?: Record<string, string>;
  /** Node options before the entry, e.g. ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"] for profiling. */
  nodeArgs?: string[];
  /** Keep the service's log lines (BenchService.logLines). */
  keepLog?: boolean;
  /** Preload bench/probe.cjs: the event loop's delay is read at stop. */
  probe?: boolean;
  /** Leave the working directory (data dir included) at stop, for a look at it; removeData() removes it. */
  keepData?: boolean;
  /** How often the health check is asked while the service starts, ms (default 100). */
  readyPollMs?: number;
}


export interface TcpSocket {
  localPort: number;
  remotePort: number;
  /** /proc/net/tcp's state: "0A" LISTEN, "01" ESTABLISHED. */
  state: string;
}

/** The TCP sockets of process `pid` (its socket fds, looked up in /proc/<pid>/net/tcp{,6}). */
export function tcpSocketsOf(pid: number): TcpSocket[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const sockets: TcpSocket[] = [];
  for (const table of ["tcp", "tcp6"]) {
    let text = "";
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !inodes.has(f[9]!)) continue;
      const port = (address: string) => parseInt(address.split(":").at(-1)!, 16);
      sockets.push({ localPort: port(f[1]!), remotePort: port(f[2]!), state: f[3]! });
    }
  }
  return sockets;
}

/** TCP ports that process `pid` listens on. */
function listeningPorts(pid: number): Set<number> {
  return new Set(tcpSocketsOf(pid).filter((s) => s.state === "0A").map((s) => s.localPort));
}

/**
 * `chjob serve` as its own process (the bin entry, which sizes the libuv pool),
 * in a temp working directory, on free ports. Started by hand rather than with
 * test/support/service.ts so any log level works: readiness is the health
 * check answering SERVING, not a log line.
 */
export async function startBenchService(opts: ServiceOptions): Promise<BenchService> {
  // A free port can be taken by another process between our probe and the
  // service's bind (tests may run alongside): then start again on others.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 5) throw err;
    }
  }
}

class PortTaken extends Error {}

async function startOnce(opts: ServiceOptions): Promise<BenchService> {
  const cwd = mkdtempSync(join(tmpdir(), "chjob-bench-service-"));
  const [grpcPort, s3Port] = [await freePort(), await freePort()];
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const probeFile = join(cwd, "probe.json");
  const nodeArgs = [...(opts.nodeArgs ?? []), ...(opts.probe ? ["--require", PROBE] : [])];
  const env: Record<string, string> = {
    ...cleanEnv(),
    ...QUIET_ENV,
    CHJOB_GRPC_ADDRESS: grpcAddress,
    CHJOB_EMBEDDED_S3_ADDRESS: `127.0.0.1:${s3Port}`,
    CHJOB_DEMO_ROWS: "0",
    CHJOB_LOG_LEVEL: opts.logLevel,
    AWS_ACCESS_KEY_ID: S3_KEY_ID,
    AWS_SECRET_ACCESS_KEY: S3_SECRET,
    ...(opts.probe ? { BENCH_PROBE_OUT: probeFile } : {}),
    ...opts.env,
  };
  // With AWS_ENDPOINT the service uses that S3 server and starts none of its own.
  const externalS3 = env.AWS_ENDPOINT !== undefined;
  const s3Endpoint = env.AWS_ENDPOINT ?? `http://127.0.0.1:${s3Port}`;
  const dataDir = resolve(cwd, env.CHJOB_DATA_DIR ?? ".chjob");
  // The embedded job store (PGlite) runs initdb on its first open of a directory
  // (10 s or more): start from a copy of a migrated one, as the tests do.
  if (env.CHJOB_DATABASE_URL === undefined && env.DEKART_POSTGRES_HOST === undefined) await seedJobStore(dataDir);
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, MAIN, "serve"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let logBytes = 0;
  const stderr: string[] = [];
  // The log is read and dropped, as a log collector would take it.
  const logLines: string[] = [];
  let partial = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    logBytes += chunk.length;
    if (!opts.keepLog) return;
    const lines = (partial + chunk.toString("utf8")).split("\n");
    partial = lines.pop()!;
    logLines.push(...lines);
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  const client = new JobClient(grpcAddress);
  const deadline = Date.now() + 60_000;
  let startMs = NaN;
  for (;;) {
    if (child.exitCode !== null) {
      const text = stderr.join("");
      client.close();
      rmSync(cwd, { recursive: true, force: true });
      if (/is in use/.test(text)) throw new PortTaken(text);
      throw new Error(`the service exited with ${child.exitCode} before serving: ${text}`);
    }
    const serving = await client.healthCheck("chjob.v1.JobService", 1_000).then(
      (s) => s === HealthCheckResponse_ServingStatus.SERVING,
      () => false,
    );
    if (serving) {
      startMs = performance.now() - spawnedAt;
      const ports = listeningPorts(child.pid!);
      if (ports.has(grpcPort) && (externalS3 || ports.has(s3Port))) break;
      // Something else answered on our port.
      child.kill("SIGKILL");
      client.close();
      await exited;
      rmSync(cwd, { recursive: true, force: true });
      throw new PortTaken(`ports ${grpcPort}/${s3Port} were taken by another process`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the service did not serve within 60 s: ${stderr.join("")}`);
    }
    await new Promise((r) => setTimeout(r, opts.readyPollMs ?? 100));
  }
  // The probe counts from here: start-up (engine load) is not what is measured.
  if (opts.probe) await readProbe(child.pid!, probeFile);
  const s3 = s3Client(s3Endpoint, S3_KEY_ID, S3_SECRET);
  return {
    pid: child.pid!,
    startMs,
    dataDir,
    grpcAddress,
    s3Endpoint,
    client,
    s3,
    get logBytes() {
      return logBytes;
    },
    logLines,
    probe: () => (opts.probe ? readProbeReport(child.pid!, probeFile) : Promise.reject(new Error("the service runs without the probe"))),
    stop: async () => {
      const delay = opts.probe ? await readProbe(child.pid!, probeFile).catch(() => undefined) : undefined;
      s3.destroy();
      client.close();
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const code = await exited;
      clearTimeout(timer);
      if (!opts.keepData) rmSync(cwd, { recursive: true, force: true });
      if (code !== 0) throw new Error(`the service exited with ${code}: ${stderr.join("")}`);
      return delay;
    },
    kill: async () => {
      s3.destroy();
      client.close();
      child.kill("SIGKILL");
      await exited;
      if (!opts.keepData) rmSync(cwd, { recursive: true, force: true });
    },
    removeData: () => rmSync(cwd, { recursive: true, force: true }),
  };
}

// A bench that dies takes its services with it.
const live = new Set<ChildProcess>();
process.once("exit", () => live.forEach((c) => c.kill("SIGKILL")));

export const TERMINAL = new Set([JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED]);

export interface ServiceJobResult {
  /** CreateJob sent -> DONE (or other terminal state) received on WatchJob, ms. */
  ms: number;
  /** Statuses as the watcher saw them, repeats folded. */
  statuses: JobStatus[];
  final: Job;
}

/** Creates a job and watches it to its end. */
export async function serviceJob(client: JobClient, spec: JobSpec): Promise<ServiceJobResult> {
  const t0 = performance.now();
  const created = await client.createJob({ reportId: spec.reportId, queryId: spec.queryId, queryText: spec.sql });
  return watchToEnd(client, created.id, t0);
}

export async function watchToEnd(client: JobClient, jobId: string, t0: number): Promise<ServiceJobResult> {
  const statuses: JobStatus[] = [];
  let final: Job | undefined;
  let ms = NaN;
  for await (const job of client.watchJob(jobId).states) {
    if (statuses.at(-1) !== job.status) statuses.push(job.status);
    if (TERMINAL.has(job.status)) {
      ms = performance.now() - t0;
      final = job;
    }
  }
  if (!final) throw new Error(`job ${jobId}: the watch ended without a terminal status (saw ${statuses.map((s) => JobStatus[s]).join(", ")})`);
  return { ms, statuses, final };
}

/** Runs jobs one after another on a service; the client-observed milliseconds of each. */
export async function runJobsInTurn(client: JobClient, jobs: JobSpec[]): Promise<number[]> {
  const out: number[] = [];
  for (const spec of jobs) {
    const res = await serviceJob(client, spec);
    mustBeDone(res);
    out.push(res.ms);
  }
  return out;
}

export function mustBeDone(r: ServiceJobResult): void {
  if (r.final.status !== JobStatus.DONE) throw new Error(`job ${r.final.id} ended ${JobStatus[r.final.status]}: ${r.final.error}`);
}

/** Removes a job's result object (outside any timed window: keeps the disk small). */
export async function deleteResult(s3: S3Client, job: Job): Promise<void> {
  if (job.resultUri) await s3.send(new DeleteObjectCommand(parseS3Uri(job.resultUri)));
}

/**
 * Whether a watcher's statuses follow PENDING -> RUNNING -> READING_RESULTS -> DONE
 * from wherever it joined, skipping none.
 */
export function noStatusSkipped(statuses: JobStatus[]): boolean {
  const order = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.DONE];
  const first = order.indexOf(statuses[0]!);
  if (first < 0) return false;
  return statuses.every((s, i) => s === order[first + i]) && statuses.at(-1) === JobStatus.DONE;
}
