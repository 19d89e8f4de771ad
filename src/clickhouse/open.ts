// Opens the configured engine: a ClickHouse server over HTTP, or chDB in-process
// (loaded only here, only when asked for).
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from "@clickhouse/client";
import type { ClickHouseTarget } from "../config/types.js";
import { chdbClient } from "./chdb.js";
import { byExportUrl, byQueryId, ClientEngine, type ClickHouseEngine } from "./engine.js";

export interface EngineOptions {
  /** Exports that may run at once. */
  maxConcurrent: number;
  /** Longest an export may take; the HTTP request waits at least this long. */
  jobTimeoutMs: number;
}

export async function openEngine(target: ClickHouseTarget, opts: EngineOptions): Promise<ClickHouseEngine> {
  return target.kind === "chdb" ? openChdb(target.path, opts) : openHttp(target, opts);
}

function openHttp(target: Extract<ClickHouseTarget, { kind: "http" }>, opts: EngineOptions): ClickHouseEngine {
  const client = (maxSockets: number, requestTimeout: number): ClickHouseClient =>
    createClient({
      url: target.url,
      username: target.username,
      password: target.password,
      database: target.database,
      application: "chjob",
      // Errors reach the job and the log through chjob itself.
      log: { level: ClickHouseLogLevel.OFF },
      request_timeout: requestTimeout,
      http_agent: agent(target, maxSockets),
    });
  const exports = client(opts.maxConcurrent + 1, opts.jobTimeoutMs + 60_000);
  return new ClientEngine({
    description: `ClickHouse at ${target.url}/${target.database} as ${target.username}`,
    exactSummary: true,
    exportClients: [exports],
    sharedExportClients: true,
    controlClient: client(4, 30_000),
    matcher: byQueryId,
    // The summary header then carries the final figures, and an error that
    // happens mid-query still arrives as an error status.
    exportSettings: { wait_end_of_query: 1 },
    stickySettings: false, // HTTP: each request carries its own settings
  });
}

/** Keep-alive agent with a connect timeout (`dial_timeout`) and optional unverified TLS (`skip_verify`). */
function agent(target: Extract<ClickHouseTarget, { kind: "http" }>, maxSockets: number): http.Agent {
  const secure = target.url.startsWith("https:");
  const base = { keepAlive: true, maxSockets, ...(secure ? { rejectUnauthorized: !target.skipVerify } : {}) };
  const a = secure ? new https.Agent(base) : new http.Agent(base);
  const timeout = target.connectTimeoutMs;
  if (timeout !== undefined) {
    const create = (a as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection.bind(a);
    (a as unknown as { createConnection: (...args: unknown[]) => Socket }).createConnection = (...args: unknown[]) => {
      const socket = create(...args);
      const timer = setTimeout(() => socket.destroy(new Error(`connect timed out after ${timeout} ms (dial_timeout)`)), timeout);
      socket.once(secure ? "secureConnect" : "connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
      return socket;
    };
  }
  return a;
}

async function openChdb(path: string, opts: EngineOptions): Promise<ClickHouseEngine> {
  // A chDB session runs one query at a time; sessions on one path run side by side.
  const exportClients = await Promise.all(Array.from({ length: opts.maxConcurrent }, () => chdbClient(path)));
  const engine = new ClientEngine({
    description: `embedded ClickHouse (chDB) at ${path}`,
    exactSummary: false,
    exportClients,
    sharedExportClients: false,
    controlClient: await chdbClient(path),
    matcher: byExportUrl,
    exportSettings: {},
    // chDB's adapter applies settings with SET on the session: they stay for the next export.
    stickySettings: true,
  });
  await engine.ping(); // loads the engine now rather than on the first job
  return engine;
}
