// Runs the built `chjob` command as a user would (not a TTY), for the CLI tests.
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import * as assert from "uvu/assert";
import { cleanEnv, MAIN, QUIET_ENV } from "./service.js";

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout as bytes (for `chjob fetch -o -`). */
  stdoutBytes: Buffer;
  ms: number;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Called with the child and the stdout so far on every stdout chunk. */
  onStdout?: (child: ReturnType<typeof spawn>, stdout: string) => void;
  timeoutMs?: number;
}

/** Runs `chjob <args>` (the built bin, via node) with no chjob variables of the caller's. */
export function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN, ...args], {
    cwd: opts.cwd ?? tmpdir(),
    env: { ...cleanEnv(), ...QUIET_ENV, ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const chunks: Buffer[] = [];
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    chunks.push(d);
    stdout += d.toString("utf8");
    opts.onStdout?.(child, stdout);
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, stdoutBytes: Buffer.concat(chunks), ms: Date.now() - started });
    }),
  );
}

export const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;

export function must<T>(value: T | undefined, message: string): T {
  if (value === undefined) throw new assert.Assertion({ message, operator: "must", actual: value, expects: "a value", generated: false });
  return value;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
export const jobIdOf = (r: CliResult) => must(UUID.exec(r.stdout)?.[0], `no job id in\n${show(r)}`);
