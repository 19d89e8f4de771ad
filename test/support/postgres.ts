// PostgreSQL for tests: the machine's server (127.0.0.1:5432, database `test`,
// or CHJOB_TEST_DATABASE_URL) with a fresh schema per test file, and a private
// server on its own port that a test may restart (pg_ctl, Debian's binaries).
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { freePort } from "./ports.js";

export const PG_URL = process.env.CHJOB_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test run uses. */
export function freshSchema(prefix = "chjob_test"): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

export async function dropSchema(schema: string, url = PG_URL): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end();
  }
}

/** Runs a query on its own short-lived connection. */
export async function pgQuery<T = Record<string, unknown>>(text: string, params: unknown[] = [], url = PG_URL): Promise<T[]> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    return (await sql.unsafe(text, params as never[])) as unknown as T[];
  } finally {
    await sql.end();
  }
}

export interface OwnPostgres {
  url: string;
  port: number;
  /** `pg_ctl restart -m fast`: every connection is cut, the server is back after. */
  restart(): void;
  stop(): void;
  start(): void;
  remove(): void;
}

function binDir(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(root, v, "bin")).find((d) => existsSync(join(d, "pg_ctl")));
}

/** Whether this machine can run a private server (Debian's postgresql binaries). */
export function canRunOwnPostgres(): boolean {
  return binDir() !== undefined;
}


/** A private PostgreSQL server in a temp directory (as user postgres when run as root: the server refuses root). */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const bin = binDir();
  if (!bin) throw new Error("PostgreSQL's server binaries are not installed (apt-get install postgresql)");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "chjob-pg-"));
  const data = join(dir, "data");
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    chmodSync(dir, 0o755);
    const pgUid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const pgGid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, pgUid, pgGid);
  }
  const run = (cmd: string, args: string[]) => {
    const [file, argv] = asRoot ? ["runuser", ["-u", "postgres", "--", join(bin, cmd), ...args]] : [join(bin, cmd), args];
    const r = spawnSync(file, argv, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr || r.stdout}`);
  };
  run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = () => run("pg_ctl", ["-D", data, "-o", opts, "-l", join(dir, "log"), "-w", "start"]);
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart: () => run("pg_ctl", ["-D", data, "-o", opts, "-l", join(dir, "log"), "-m", "fast", "-w", "restart"]),
    stop: () => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]),
    start,
    remove: () => {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
