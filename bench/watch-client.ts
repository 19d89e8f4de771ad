// Many WatchJob streams from a process of its own (bench/workloads/watchers.ts
// forks several): the bench's event loop would otherwise be the bottleneck of
// the spread it measures. Each client process holds `channels` HTTP/2
// connections to each replica and spreads its streams over them; it stamps
// every message with the machine's monotonic clock (process.hrtime, shared by
// all processes on the machine), so that receive times of all client processes
// and the replicas' own write times (bench/probe.cts) compare directly.
//
// The streams stand in for thousands of clients on machines of their own, so a
// stream does only what any client must: a gRPC call on node:http2 (the same
// request bytes, framing and trailers as grpc-js), reading each message's
// length prefix and the job's status field. A full grpc-js client with a
// protobuf decode per stream costs several times the CPU, and a few processes
// on this machine reading 10,000 streams would measure themselves.
import { fork, type ChildProcess } from "node:child_process";
import http2 from "node:http2";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { JobStatus, WatchJobRequestSchema } from "../gen/chjob/v1/job_service_pb.js";
import { cleanEnv, QUIET_ENV } from "../test/support/service.js";

/** The machine's monotonic clock (CLOCK_MONOTONIC, the same in every process), ms. */
export const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

type Request =
  | { op: "connect"; addresses: string[]; channels: number }
  /** Streams `first` … `first + streams − 1` (global numbers): stream k watches on addresses[k % addresses.length]. */
  | { op: "watch"; jobId: string; first: number; streams: number }
  | { op: "stop" };

/** What one client process saw of its streams (index: its stream number − first). */
export interface WatchReport {
  /** Which address (replica) each stream was on. */
  on: number[];
  /** monoMs when the first message arrived, and its status. */
  firstAt: number[];
  firstStatus: JobStatus[];
  /** monoMs when each status after the first message arrived: key JobStatus, one entry per stream (NaN: not seen as a change). */
  changeAt: Record<number, number[]>;
  /** monoMs of the terminal message (NaN: none). */
  endAt: number[];
  endStatus: JobStatus[];
  /** Streams whose statuses were not in order PENDING → RUNNING → READING_RESULTS → DONE from where they joined. */
  skipped: number;
  /** Streams that ended with an error, and the first few messages. */
  failed: number;
  errors: string[];
  /** Messages received in all, and their bytes (gRPC frames). */
  messages: number;
  bytes: number;
}

type Reply = { op: "connected" } | { op: "joined"; at: number } | { op: "watched"; report: WatchReport } | { op: "stopped" } | { op: "error"; message: string };

const ORDER = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.DONE];
const TERMINAL = new Set([JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED]);

export interface WatchClient {
  pid: number;
  connect(addresses: string[], channels: number): Promise<void>;
  /** Opens the streams; `joined` settles when each has its first message, `report` when each has ended. */
  watch(jobId: string, first: number, streams: number): { joined: Promise<number>; report: Promise<WatchReport> };
  stop(): Promise<void>;
}

const SELF = join(dirname(fileURLToPath(import.meta.url)), "watch-client.js");

export function startWatchClient(nodeArgs: string[] = []): WatchClient {
  const child: ChildProcess = fork(SELF, [], { env: { ...cleanEnv(), ...QUIET_ENV }, execArgv: nodeArgs, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const waiters: Array<{ op: Reply["op"]; resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  child.on("message", (m: Reply) => {
    if (m.op === "error") {
      for (const w of waiters.splice(0)) w.reject(new Error(`watch client ${child.pid}: ${m.message}`));
      return;
    }
    const at = waiters.findIndex((w) => w.op === m.op);
    if (at >= 0) waiters.splice(at, 1)[0]!.resolve(m);
  });
  void exited.then(() => {
    for (const w of waiters.splice(0)) w.reject(new Error(`watch client ${child.pid} exited`));
  });
  const expect = <O extends Reply["op"]>(op: O) => new Promise<Extract<Reply, { op: O }>>((resolve, reject) => waiters.push({ op, resolve: resolve as (r: Reply) => void, reject }));
  const send = (r: Request) => child.send(r);
  return {
    pid: child.pid!,
    async connect(addresses, channels) {
      const done = expect("connected");
      send({ op: "connect", addresses, channels });
      await done;
    },
    watch(jobId, first, streams) {
      const joined = expect("joined").then((m) => m.at);
      const report = expect("watched").then((m) => m.report);
      // Either may be left unread when the other fails.
      joined.catch(() => undefined);
      report.catch(() => undefined);
      send({ op: "watch", jobId, first, streams });
      return { joined, report };
    },
    async stop() {
      if (child.exitCode !== null) return;
      const stopped = expect("stopped").catch(() => undefined);
      send({ op: "stop" });
      await stopped;
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A gRPC message (a length-prefixed frame's body) of WatchJobResponse: its job's status (field 1 → field 5), or undefined. */
export function jobStatusOf(msg: Buffer): JobStatus | undefined {
  const job = field(msg, 0, msg.length, 1);
  if (job?.wire !== 2) return undefined;
  const status = field(msg, job.start, job.end, 5);
  return status?.wire === 0 ? (status.value as JobStatus) : undefined;
}

/** The first field numbered `want` in buf[start, end): a varint's value, or a length-delimited field's bounds. */
function field(buf: Buffer, start: number, end: number, want: number): { wire: number; value: number; start: number; end: number } | undefined {
  let pos = start;
  const varint = () => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) return v;
      mul *= 128;
    }
  };
  while (pos < end) {
    const tag = varint();
    const [num, wire] = [Math.floor(tag / 8), tag & 7];
    if (wire === 0) {
      const value = varint();
      if (num === want) return { wire, value, start: pos, end: pos };
    } else if (wire === 2) {
      const len = varint();
      if (num === want) return { wire, value: len, start: pos, end: pos + len };
      pos += len;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else return undefined;
  }
  return undefined;
}

// The child.
if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  let sessions: http2.ClientHttp2Session[][] = [];
  const reply = (r: Reply) => process.send!(r);
  const HEADERS = { ":method": "POST", ":path": "/chjob.v1.JobService/WatchJob", "content-type": "application/grpc", te: "trailers" };

  const watch = (jobId: string, first: number, streams: number) => {
    const n = sessions.length;
    const body = toBinary(WatchJobRequestSchema, create(WatchJobRequestSchema, { jobId }));
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const report: WatchReport = {
      on: [],
      firstAt: new Array(streams).fill(NaN),
      firstStatus: new Array(streams).fill(JobStatus.UNSPECIFIED),
      changeAt: Object.fromEntries(ORDER.map((s) => [s, new Array(streams).fill(NaN)])),
      endAt: new Array(streams).fill(NaN),
      endStatus: new Array(streams).fill(JobStatus.UNSPECIFIED),
      skipped: 0,
      failed: 0,
      errors: [],
      messages: 0,
      bytes: 0,
    };
    let joined = 0;
    let ended = 0;
    const joinOne = () => {
      if (++joined === streams) reply({ op: "joined", at: monoMs() });
    };
    const endOne = () => {
      if (++ended === streams) reply({ op: "watched", report });
    };
    for (let i = 0; i < streams; i++) {
      const k = first + i;
      const replica = k % n;
      report.on.push(replica);
      const pool = sessions[replica]!;
      const req = pool[Math.floor(k / n) % pool.length]!.request(HEADERS);
      req.end(frame);
      const seen: JobStatus[] = [];
      let pending: Buffer | undefined;
      let grpcStatus: string | undefined;
      let over = false;
      const onMessage = (status: JobStatus | undefined, now: number) => {
        report.messages++;
        if (status === undefined) return;
        if (seen.length === 0) {
          report.firstAt[i] = now;
          report.firstStatus[i] = status;
          seen.push(status);
          joinOne();
        } else if (seen.at(-1) !== status) {
          seen.push(status);
          const at = report.changeAt[status];
          if (at) at[i] = now;
        }
        if (TERMINAL.has(status)) {
          report.endAt[i] = now;
          report.endStatus[i] = status;
        }
      };
      req.on("data", (chunk: Buffer) => {
        const now = monoMs();
        let buf = pending ? Buffer.concat([pending, chunk]) : chunk;
        while (buf.length >= 5) {
          const len = buf.readUInt32BE(1);
          if (buf.length < 5 + len) break;
          report.bytes += 5 + len;
          onMessage(jobStatusOf(buf.subarray(5, 5 + len)), now);
          buf = buf.subarray(5 + len);
        }
        pending = buf.length ? buf : undefined;
      });
      // A status comes in the trailers, or in the headers of a trailers-only answer (an error).
      req.on("response", (headers) => {
        if (headers["grpc-status"] !== undefined) grpcStatus = String(headers["grpc-status"]);
      });
      req.on("trailers", (headers) => {
        grpcStatus = String(headers["grpc-status"]);
        if (grpcStatus !== "0") grpcStatus += ` ${decodeURIComponent(String(headers["grpc-message"] ?? ""))}`;
      });
      const finish = (err?: Error) => {
        if (over) return;
        over = true;
        const problem = err?.message ?? (grpcStatus === "0" ? undefined : `grpc-status ${grpcStatus ?? "none"}`);
        if (problem) {
          report.failed++;
          if (report.errors.length < 5) report.errors.push(problem);
        }
        const from = ORDER.indexOf(seen[0]!);
        if (!problem && (from < 0 || !seen.every((s, j) => s === ORDER[from + j]) || seen.at(-1) !== JobStatus.DONE)) report.skipped++;
        if (seen.length === 0) joinOne(); // never joined: counted so that "joined" still comes
        endOne();
      };
      req.on("close", () => finish());
      req.on("error", (err: Error) => finish(err));
    }
  };

  const connect = (address: string) =>
    new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const session = http2.connect(`http://${address}`);
      session.once("connect", () => resolve(session));
      session.once("error", reject);
    });

  process.on("message", (m: Request) => {
    try {
      if (m.op === "connect") {
        Promise.all(m.addresses.map((a) => Promise.all(Array.from({ length: m.channels }, () => connect(a))))).then(
          (s) => {
            sessions = s;
            reply({ op: "connected" });
          },
          (err: unknown) => reply({ op: "error", message: String(err) }),
        );
      } else if (m.op === "watch") {
        watch(m.jobId, m.first, m.streams);
      } else {
        for (const s of sessions.flat()) s.close();
        reply({ op: "stopped" });
        process.disconnect();
      }
    } catch (err) {
      reply({ op: "error", message: String((err as Error)?.stack ?? err) });
    }
  });
  process.on("disconnect", () => process.exit(0));
}
