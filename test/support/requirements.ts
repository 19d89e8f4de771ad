// Programs some tests need beyond Node: when one is missing, the tests that need it are skipped,
// with one line saying which program and how to install it; under CI=true they fail instead, so CI
// still runs everything.
//
//   const test = whenAvailable(requireProgram(CLICKHOUSE_SERVER), suite<Ctx>("…"));  // a whole suite
//   const withServer = whenAvailable(requireProgram(CLICKHOUSE_SERVER), test);       // some tests of one
//   const withPg = whenAvailable(await requirePostgres(), suite("…"));
//
// CHJOB_TEST_WITHOUT=clickhouse-server,python3-grpcio,postgresql counts the programs it names as
// missing, to see (or test) what a machine without them does.
//
// test/run.mjs reads the lines printed here ("skipped: needs …" / "failed: needs …") to list the
// missing programs above its closing line: keep their shape.

import { spawnSync } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import type { Callback, Test } from "uvu";
import { clickHouseServerAvailable } from "./clickhouse-server.js";

export interface Program {
  /** How the program is called in messages and in CHJOB_TEST_WITHOUT. */
  name: string;
  /** Whether this machine has it. */
  found: () => boolean;
  /** The command that installs it, e.g. "apt-get install clickhouse-server". */
  install: string;
}

/** Debian's ClickHouse server (18.16), started by test/support/clickhouse-server.ts. */
export const CLICKHOUSE_SERVER: Program = {
  name: "clickhouse-server",
  found: clickHouseServerAvailable,
  install: "apt-get install clickhouse-server",
};

/** A python3 that imports grpc and google.protobuf: $PYTHON, python3 on PATH, or /usr/bin/python3. */
export function python3WithGrpc(): string | undefined {
  const candidates = [process.env["PYTHON"], "python3", "/usr/bin/python3"].filter((c): c is string => Boolean(c));
  return candidates.find(
    (py) => spawnSync(py, ["-c", "import grpc, google.protobuf"], { stdio: "ignore" }).status === 0,
  );
}

/** python3 with the grpc module (Debian's python3-grpcio brings python3-protobuf along). */
export const PYTHON3_GRPCIO: Program = {
  name: "python3-grpcio",
  found: () => python3WithGrpc() !== undefined,
  install: "apt-get install python3-grpcio",
};

export const POSTGRESQL_INSTALL = "apt-get install postgresql && service postgresql start";

/** Whether CI=true (or CI=1): a missing program then fails the tests that need it. */
export function inCI(): boolean {
  return /^(true|1)$/i.test(process.env["CI"] ?? "");
}

/** The program names of CHJOB_TEST_WITHOUT (comma or space separated). */
export function simulatedMissing(): string[] {
  return (process.env["CHJOB_TEST_WITHOUT"] ?? "").split(/[\s,]+/).filter(Boolean);
}

/** Programs reported missing in this process (each is reported once), and the last one found missing. */
const reported = new Set<string>();
let lastMissing = "";

/** Why a test that needs a missing program failed (under CI=true). */
export class MissingProgramError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MissingProgramError";
    // uvu prints a stack only when there is one: this failure is said by its message alone.
    this.stack = `${this.name}: ${message}`;
  }
}

function check(name: string, install: string, found: () => boolean, notFound = "is not installed here"): boolean {
  const simulated = simulatedMissing().includes(name);
  if (!simulated && found()) return true;
  const why = simulated ? "is counted as missing (CHJOB_TEST_WITHOUT)" : notFound;
  lastMissing = `needs ${name}, which ${why} (install: ${install})`;
  if (!reported.has(name)) {
    reported.add(name);
    const verdict = inCI() ? "failed" : "skipped";
    const consequence = inCI() ? "CI=true: the tests that need it fail" : "the tests that need it are skipped";
    console.log(`  ${verdict}: needs ${name}, which ${why}; ${consequence} (install: ${install})`);
  }
  return false;
}

/**
 * Whether the tests that need `program` may run. When not, one line says why and how to install
 * it; pass the answer to whenAvailable().
 */
export function requireProgram(program: Program): boolean {
  return check(program.name, program.install, program.found);
}

/** Whether something accepts a connection at `target` within `timeoutMs`. */
export function reachable(target: { host: string; port: number } | { path: string }, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(target);
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Whether a PostgreSQL server answers at PGHOST/PGPORT (default 127.0.0.1:5432; a PGHOST that
 * starts with "/" is the directory of its Unix socket), by a plain connect within `timeoutMs`.
 * When not, one line says why and how to install and start it; pass the answer to whenAvailable().
 */
export async function requirePostgres(opts: { host?: string; port?: number; timeoutMs?: number } = {}): Promise<boolean> {
  const host = opts.host ?? (process.env["PGHOST"] || "127.0.0.1");
  const port = opts.port ?? Number(process.env["PGPORT"] || 5432);
  const at = host.startsWith("/") ? { path: join(host, `.s.PGSQL.${port}`) } : { host, port };
  const simulated = simulatedMissing().includes("postgresql");
  const answers = simulated ? false : await reachable(at, opts.timeoutMs ?? 1000);
  return check("postgresql", POSTGRESQL_INSTALL, () => answers, `does not answer at ${host}:${port}`);
}

/**
 * `test` itself when `available`; else a stand-in with which every test registered is skipped
 * (uvu counts it as Skipped) or, under CI=true, fails saying which program is missing (the one
 * of the requireProgram()/requirePostgres() call that answered `available`). The
 * stand-in's hooks do not run: use it for a whole suite, or as a second name for the tests of a
 * suite that need the program (their suite's own hooks run as usual).
 */
export function whenAvailable<T>(available: boolean, test: Test<T>): Test<T> {
  if (available) return test;
  const reason = lastMissing || "needs a program that is missing here";
  const register = (name: string, _fn?: Callback<T>): void => {
    if (!inCI()) {
      test.skip(name);
      return;
    }
    test(name, () => {
      throw new MissingProgramError(`${reason}; CI=true makes this a failure`);
    });
  };
  const hook = Object.assign((_fn: Callback<T>) => undefined, { each: (_fn: Callback<T>) => undefined });
  return Object.assign(register, {
    only: register,
    skip: (name?: string) => test.skip(name),
    before: hook,
    after: hook,
    run: () => test.run(),
  });
}
