// Test harness: a real ClickHouse server (Debian `clickhouse-server`, 18.16) as a plain child
// process on free loopback ports, with its own temporary data directory, config and users file.
//
//   const ch = await startClickHouseServer();          // user "chjob", random password, db "chjob"
//   const client = createClient({ url: ch.httpUrl, username: ch.user, password: ch.password,
//                                 database: ch.database });
//   ...
//   await ch.stop();                                   // kills queries, SIGTERM, removes the dir
//
// The binary is looked up as $CLICKHOUSE_SERVER_BIN, then `clickhouse-server` on PATH, then
// /usr/sbin/clickhouse-server (Debian puts it in /usr/sbin, which a non-root PATH may lack).
// Set CHJOB_KEEP_CLICKHOUSE_DIR=1 to keep the temporary directory (config, data, logs) after
// stop() for debugging; its path is `handle.dir`.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants as fsConstants, closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { request as httpRequestRaw } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

export interface ClickHouseServerOptions {
  /** User created in the generated users file (default "chjob"). */
  user?: string;
  /** That user's password (default: random hex). */
  password?: string;
  /** Database created after start, and the server's default database (default "chjob"). */
  database?: string;
}

export interface ClickHouseServerHandle {
  /** http://127.0.0.1:PORT (no trailing slash). */
  readonly httpUrl: string;
  readonly httpPort: number;
  /** Native protocol port (for clickhouse-client). */
  readonly tcpPort: number;
  readonly user: string;
  readonly password: string;
  readonly database: string;
  /** http://user:password@127.0.0.1:PORT/database (user and password URI-encoded). */
  readonly dsn: string;
  /** The temporary directory: config.xml, users.xml, data/, log/. */
  readonly dir: string;
  /** Pid of the running server process, or undefined while it is not running. */
  readonly pid: number | undefined;
  /** Kill running queries, SIGTERM (SIGKILL after a few seconds), wait for exit, remove the dir. */
  stop(): Promise<void>;
  /** Send a signal (default SIGKILL) to the server process without waiting; the dir stays. */
  kill(signal?: NodeJS.Signals): void;
  /** Stop the server if it runs (keeping its data) and start it again on the same ports and dir. */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;
// After SIGTERM the server waits for its open HTTP connections, idle keep-alive ones included
// (up to keep_alive_timeout = 3 s): it gets SIGKILL after this grace. With no client connection
// left open it exits in about 0.5-1 s. SIGKILL loses nothing that an answered query wrote.
const TERM_GRACE_MS = 2_000;
const KILL_WAIT_MS = 5_000;

/** Path of the clickhouse-server binary, or undefined if none is installed. */
export function clickHouseServerBinary(): string | undefined {
  const candidates: string[] = [];
  const fromEnv = process.env["CLICKHOUSE_SERVER_BIN"];
  if (fromEnv) candidates.push(fromEnv);
  for (const dir of (process.env["PATH"] ?? "").split(delimiter)) {
    if (dir) candidates.push(join(dir, "clickhouse-server"));
  }
  candidates.push("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server");
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Whether a clickhouse-server binary is installed (tests should fail, not skip, without it). */
export function clickHouseServerAvailable(): boolean {
  return clickHouseServerBinary() !== undefined;
}

// Servers still running when this process exits get SIGKILL and their directories removed, so a
// crashed or interrupted test run leaves no clickhouse-server behind.
const live = new Set<{ child: ChildProcess | undefined; dir: string; keep: boolean }>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on("exit", () => {
    for (const entry of live) {
      try {
        entry.child?.kill("SIGKILL");
      } catch {
        // already gone
      }
      if (!entry.keep) {
        try {
          rmSync(entry.dir, { recursive: true, force: true });
        } catch {
          // best effort
        }
      }
    }
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = (): void => {
      // Only act if nobody else handles the signal: then restore the default behaviour.
      process.removeListener(signal, onSignal);
      if (process.listenerCount(signal) === 0) {
        process.exit(128 + (signal === "SIGINT" ? 2 : signal === "SIGTERM" ? 15 : 1));
      }
    };
    process.on(signal, onSignal);
  }
}

async function freePorts(count: number): Promise<number[]> {
  // Keep all listeners open until every port is picked, so the ports differ.
  const servers = [] as ReturnType<typeof createServer>[];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => resolve());
      });
      const address = server.address();
      if (address === null || typeof address === "string") throw new Error("no port assigned");
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function xml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

function quoteIdentifier(name: string): string {
  return "`" + name.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
}

function configXml(dir: string, httpPort: number, tcpPort: number, database: string): string {
  const data = join(dir, "data");
  const log = join(dir, "log");
  // `<yandex>` is the root element 18.16 understands (newer servers still accept it).
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>information</level>
    <log>${xml(join(log, "clickhouse-server.log"))}</log>
    <errorlog>${xml(join(log, "clickhouse-server.err.log"))}</errorlog>
    <size>100M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${xml(data)}/</path>
  <tmp_path>${xml(join(data, "tmp"))}/</tmp_path>
  <user_files_path>${xml(join(data, "user_files"))}/</user_files_path>
  <format_schema_path>${xml(join(data, "format_schemas"))}/</format_schema_path>
  <users_config>${xml(join(dir, "users.xml"))}</users_config>
  <default_profile>default</default_profile>
  <default_database>${xml(database)}</default_database>
  <max_concurrent_queries>100</max_concurrent_queries>
  <keep_alive_timeout>3</keep_alive_timeout>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
  <shutdown_wait_unfinished>2</shutdown_wait_unfinished>
  <query_log>
    <database>system</database>
    <table>query_log</table>
    <partition_by>toYYYYMM(event_date)</partition_by>
    <flush_interval_milliseconds>1000</flush_interval_milliseconds>
  </query_log>
</yandex>
`;
}

function usersXml(user: string, password: string): string {
  return `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <log_queries>1</log_queries>
    </default>
  </profiles>
  <users>
    <${user}>
      <password>${xml(password)}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${user}>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;
}

function tail(path: string, lines: number): string {
  try {
    const text = readFileSync(path, "utf8");
    // Stack traces are long; keep the last lines that are not stack frames.
    const kept = text.split("\n").filter((line) => !/^\s*\d+\. /.test(line) && line.trim() !== "");
    return kept.slice(-lines).join("\n");
  } catch {
    return "(none)";
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startClickHouseServer(opts: ClickHouseServerOptions = {}): Promise<ClickHouseServerHandle> {
  const binary = clickHouseServerBinary();
  if (binary === undefined) {
    throw new Error(
      "clickhouse-server is not installed (looked at $CLICKHOUSE_SERVER_BIN, PATH, /usr/sbin): " +
        "apt-get install -y clickhouse-server clickhouse-client",
    );
  }
  const user = opts.user ?? "chjob";
  const password = opts.password ?? randomBytes(12).toString("hex");
  const database = opts.database ?? "chjob";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(user)) throw new Error(`unsupported user name ${JSON.stringify(user)}`);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) {
    throw new Error(`unsupported database name ${JSON.stringify(database)}`);
  }

  const dir = await mkdtemp(join(tmpdir(), "chjob-clickhouse-"));
  const keep = process.env["CHJOB_KEEP_CLICKHOUSE_DIR"] === "1";
  const entry: { child: ChildProcess | undefined; dir: string; keep: boolean } = { child: undefined, dir, keep };
  installExitHooks();
  live.add(entry);

  const logDir = join(dir, "log");
  const errorLog = join(logDir, "clickhouse-server.err.log");
  const consoleLog = join(logDir, "console.log");
  await mkdir(join(dir, "data"), { recursive: true });
  await mkdir(logDir, { recursive: true });
  await writeFile(join(dir, "users.xml"), usersXml(user, password));

  let httpPort = 0;
  let tcpPort = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let spawnError: Error | undefined;
  let stopped = false;

  const auth = "Basic " + Buffer.from(`${user}:${password}`).toString("base64");

  // Requests of the harness itself use one connection each ("Connection: close"): an idle
  // keep-alive connection would hold up the server's shutdown until its keep-alive timeout.
  function httpRequest(path: string, body: string | undefined, timeoutMs: number): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const request = httpRequestRaw(
        {
          host: "127.0.0.1",
          port: httpPort,
          path,
          method: body === undefined ? "GET" : "POST",
          agent: false,
          headers: { Authorization: auth, Connection: "close" },
          timeout: timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
          );
          response.on("error", reject);
        },
      );
      request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.on("error", reject);
      request.end(body);
    });
  }

  async function httpQuery(sql: string, timeoutMs: number): Promise<string> {
    const { status, text } = await httpRequest("/", sql, timeoutMs);
    if (status !== 200) throw new Error(`ClickHouse HTTP ${status}: ${text.trim()}`);
    return text;
  }

  function spawnServer(): void {
    const out = openSync(consoleLog, "a");
    try {
      child = spawn(binary!, [`--config-file=${join(dir, "config.xml")}`], {
        cwd: dir,
        stdio: ["ignore", out, out],
        env: { ...process.env, TZ: process.env["TZ"] ?? "UTC" },
      });
    } finally {
      closeSync(out);
    }
    // Do not hold the test process open: a forgotten stop() must not hang the run. The "exit" hook
    // above kills the server when the test process ends.
    child.unref();
    entry.child = child;
    const current = child;
    spawnError = undefined;
    exited = new Promise<void>((resolve) => {
      if (current.exitCode !== null || current.signalCode !== null) resolve();
      else current.once("exit", () => resolve());
      // A spawn failure (ENOENT, EACCES) is an "error" event, maybe without "exit".
      current.once("error", (err) => {
        if (current.pid === undefined) {
          spawnError = err;
          resolve();
        }
      });
    });
  }

  function running(): boolean {
    return (
      child !== undefined && spawnError === undefined && child.exitCode === null && child.signalCode === null
    );
  }

  function failure(reason: string): Error {
    return new Error(
      `clickhouse-server (${binary}, http ${httpPort}, tcp ${tcpPort}) ${reason}.\n` +
        `--- tail of ${errorLog}:\n${tail(errorLog, 20)}\n` +
        `--- tail of ${consoleLog}:\n${tail(consoleLog, 10)}` +
        (keep ? "" : "\n(the directory is removed: set CHJOB_KEEP_CLICKHOUSE_DIR=1 to keep it)"),
    );
  }

  async function waitReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (!running()) {
        const c = child!;
        if (spawnError) throw failure(`could not be started: ${spawnError.message}`);
        throw failure(`exited during start-up (code ${c.exitCode}, signal ${c.signalCode})`);
      }
      try {
        const { status, text } = await httpRequest("/ping", undefined, 1000);
        if (status === 200 && text.trim() === "Ok.") return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw failure(`did not answer /ping within ${READY_TIMEOUT_MS / 1000} s`);
      }
      await sleep(50);
    }
  }

  /** Whether the server exits within `ms` (the timer is cleared: it must not hold the process). */
  function exitWithin(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async function terminate(): Promise<void> {
    // Waits below go through exitWithin(): its timer keeps this process alive until the "exit"
    // event of the (unref'ed) child arrives.
    if (!running()) {
      await exitWithin(KILL_WAIT_MS);
      return;
    }
    // On SIGTERM the server waits for running queries: cancel them first.
    try {
      await httpQuery("KILL QUERY WHERE 1 ASYNC", 2000);
    } catch {
      // the server may be unresponsive (e.g. after SIGSTOP); SIGKILL below covers it
    }
    child!.kill("SIGTERM");
    if (!(await exitWithin(TERM_GRACE_MS)) && running()) {
      child!.kill("SIGKILL");
      if (!(await exitWithin(KILL_WAIT_MS))) {
        throw new Error(`clickhouse-server pid ${child!.pid} did not exit after SIGKILL`);
      }
    }
  }

  async function startOnce(): Promise<void> {
    spawnServer();
    try {
      await waitReady();
    } catch (err) {
      if (running()) {
        child!.kill("SIGKILL");
        await exitWithin(KILL_WAIT_MS);
      }
      throw err;
    }
  }

  // First start: fresh ports. A port taken between picking and binding is retried with new ones.
  for (let attempt = 1; ; attempt++) {
    [httpPort, tcpPort] = (await freePorts(2)) as [number, number];
    await writeFile(join(dir, "config.xml"), configXml(dir, httpPort, tcpPort, database));
    try {
      await startOnce();
      break;
    } catch (err) {
      const addressInUse = /Address already in use|EADDRINUSE/i.test(tail(errorLog, 20) + tail(consoleLog, 10));
      if (attempt < 3 && addressInUse) continue;
      live.delete(entry);
      if (!keep) await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  try {
    await httpQuery(`CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(database)}`, 10_000);
  } catch (err) {
    await terminate().catch(() => undefined);
    live.delete(entry);
    if (!keep) await rm(dir, { recursive: true, force: true });
    throw err;
  }

  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const handle: ClickHouseServerHandle = {
    httpUrl,
    httpPort,
    tcpPort,
    user,
    password,
    database,
    dsn: `http://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${httpPort}/${database}`,
    dir,
    get pid() {
      return running() ? child!.pid : undefined;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await terminate();
      } finally {
        live.delete(entry);
        if (!keep) await rm(dir, { recursive: true, force: true });
      }
    },
    kill(signal: NodeJS.Signals = "SIGKILL") {
      if (running()) child!.kill(signal);
    },
    async restart() {
      if (stopped) throw new Error("restart() after stop(): the server's directory is gone");
      await terminate();
      await startOnce();
    },
  };
  return handle;
}
