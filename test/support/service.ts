// Starts the real service as a child process (`chjob serve`) in a temp working
// directory, on free ports, and reads where it listens from its log.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { JobClient } from "../../src/client.js";
import { seedJobStore } from "./pglite-template.js";

export const MAIN = join(dirname(fileURLToPath(import.meta.url)), "../../src/cli/launch.cjs");

export interface ServiceProcess {
  child: ChildProcess;
  cwd: string;
  grpcAddress: string;
  s3Endpoint: string;
  /** Every stdout line so far (JSON log lines). */
  logs: string[];
  stderr: string[];
  client(opts?: ConstructorParameters<typeof JobClient>[1]): JobClient;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  /** SIGTERM, then wait for exit (SIGKILL and an error with the last log lines after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<number | null>;
  /** Removes the temp directory (after stop). */
  cleanup(): void;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Reuse a working directory (e.g. to restart on the same data). */
  cwd?: string;
  timeoutMs?: number;
}

export const QUIET_ENV = { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" };

/** Environment without any chjob/Dekart/AWS/OpenTelemetry variable of the caller's. */
export function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(CHJOB_|DEKART_|AWS_|OTEL_)/.test(k)) env[k] = v;
  }
  return env;
}

// A test process that dies (failure, timeout) takes its services with it.
const live = new Set<ChildProcess>();
process.once("exit", () => live.forEach((c) => c.kill("SIGKILL")));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    live.forEach((c) => c.kill("SIGKILL"));
    process.exit(130);
  });
}

export async function startService(opts: StartOptions = {}): Promise<ServiceProcess> {
  const cwd = opts.cwd ?? mkdtempSync(join(tmpdir(), "chjob-test-"));
  const env: Record<string, string> = {
    ...cleanEnv(),
    ...QUIET_ENV,
    CHJOB_GRPC_ADDRESS: "127.0.0.1:0",
    CHJOB_EMBEDDED_S3_ADDRESS: "127.0.0.1:0",
    CHJOB_DEMO_ROWS: "0",
    CHJOB_LOG_LEVEL: "debug",
    ...opts.env,
  };
  if (env.CHJOB_DATABASE_URL === undefined && env.DEKART_POSTGRES_HOST === undefined) {
    await seedJobStore(resolve(cwd, env.CHJOB_DATA_DIR ?? ".chjob"));
  }
  const child = spawn(process.execPath, [MAIN, "serve"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  child.once("exit", () => live.delete(child));
  const logs: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`service did not start in time:\n${logs.join("\n")}\n${stderr.join("")}`));
    }, opts.timeoutMs ?? 30_000);
    let buffer = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        logs.push(line);
        if (line.includes('"msg":"chjob serving"')) {
          clearTimeout(timer);
          const info = JSON.parse(line) as { grpc: string; s3: string };
          const s3Endpoint = /http:\/\/[^\s]+/.exec(info.s3)?.[0] ?? info.s3;
          resolve(makeHandle(child, cwd, info.grpc, s3Endpoint, logs, stderr, exited));
        }
      }
    });
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before serving:\n${logs.join("\n")}\n${stderr.join("")}`));
    });
  });
}

function makeHandle(
  child: ChildProcess,
  cwd: string,
  grpcAddress: string,
  s3Endpoint: string,
  logs: string[],
  stderr: string[],
  exited: Promise<number | null>,
): ServiceProcess {
  const clients: JobClient[] = [];
  return {
    child,
    cwd,
    grpcAddress,
    s3Endpoint,
    logs,
    stderr,
    exited,
    client(opts) {
      const c = new JobClient(grpcAddress, opts);
      clients.push(c);
      return c;
    },
    async stop(timeoutMs = 40_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            child.kill("SIGKILL");
            reject(new Error(`service did not stop within ${timeoutMs} ms; its last log lines:\n${logs.slice(-15).join("\n")}`));
          }, timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
      clients.forEach((c) => c.close());
      return code;
    },
    cleanup() {
      rmSync(cwd, { recursive: true, force: true });
    },
  };
}

/** All states a watcher sees, until the stream ends. */
export async function collect<T>(states: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const s of states) out.push(s);
  return out;
}
