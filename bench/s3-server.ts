// An S3 server (s3rver, as test/support/fault-s3.ts starts it) in a process of its
// own, for workloads whose services share one (bench/workloads/replicas.ts): in
// the bench process it would share an event loop with the gRPC client whose
// receive times are measured. Forked by startS3Process(); stops when told or
// when the bench goes away.
import { fork } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startStandaloneS3, type StandaloneS3 } from "../test/support/fault-s3.js";
import { cleanEnv, QUIET_ENV } from "../test/support/service.js";

interface Start {
  op: "start";
  buckets: string[];
  accessKeyId: string;
  secretAccessKey: string;
}

type Reply = { op: "started"; endpoint: string; pid: number } | { op: "stopped" } | { op: "error"; message: string };

export interface S3Process {
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

const SELF = join(dirname(fileURLToPath(import.meta.url)), "s3-server.js");

export async function startS3Process(opts: Omit<Start, "op">): Promise<S3Process> {
  const child = fork(SELF, [], { env: { ...cleanEnv(), ...QUIET_ENV }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const next = () =>
    new Promise<Reply>((resolve, reject) => {
      child.once("message", (m: Reply) => (m.op === "error" ? reject(new Error(`S3 server: ${m.message}`)) : resolve(m)));
      void exited.then(() => reject(new Error("the S3 server process exited")));
    });
  const started = next();
  child.send({ op: "start", ...opts } satisfies Start);
  const reply = await started;
  if (reply.op !== "started") throw new Error(`S3 server: unexpected ${reply.op}`);
  return {
    endpoint: reply.endpoint,
    pid: reply.pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const stopped = next().catch(() => undefined);
      child.send({ op: "stop" });
      await stopped;
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// The child.
if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  let s3: StandaloneS3 | undefined;
  const send = (r: Reply) => process.send!(r);
  process.on("message", (m: Start | { op: "stop" }) => {
    if (m.op === "start") {
      startStandaloneS3(m).then(
        (s) => {
          s3 = s;
          send({ op: "started", endpoint: s.endpoint, pid: process.pid });
        },
        (err: unknown) => send({ op: "error", message: String(err) }),
      );
    } else {
      void (s3?.cleanup() ?? Promise.resolve()).finally(() => {
        send({ op: "stopped" });
        process.disconnect();
      });
    }
  });
  process.on("disconnect", () => void (s3?.cleanup() ?? Promise.resolve()).finally(() => process.exit(0)));
}
