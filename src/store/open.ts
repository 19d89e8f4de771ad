// Opens the configured job store: PostgreSQL (a URL, or Dekart's own
// DEKART_POSTGRES_* variables) or, by default, PGlite under CHJOB_DATA_DIR/jobs;
// then brings its schema up to date.
import type { StoreTarget } from "../config/types.js";
import type { DirectoryLock } from "./dir-lock.js";
import type { JobStore } from "./job-store.js";
import { migrate } from "./migrations.js";
import { openPGlite } from "./pglite.js";
import { openPostgres } from "./postgres.js";
import { SqlJobStore } from "./sql-job-store.js";
import type { SqlClient } from "./sql.js";

export type { StoreTarget };

export interface OpenStoreOptions {
  /** PGlite: the directory's lock, when the caller took it already (to refuse a second process early). */
  lock?: DirectoryLock;
  /** Connections in the pool of a PostgreSQL store. */
  maxConnections?: number;
  onRetry?: (err: unknown, attempt: number) => void;
}

export async function openStore(target: StoreTarget, opts: OpenStoreOptions = {}): Promise<JobStore> {
  const db = await connect(target, opts);
  try {
    await migrate(db, target.schema).catch((err: Error) => {
      throw new Error(`${variableOf(target)}: ${db.description}: ${describeDbError(err)}`);
    });
    const store = new SqlJobStore(db, { schema: target.schema, onRetry: opts.onRetry });
    await store.listen();
    return store;
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}

async function connect(target: StoreTarget, opts: OpenStoreOptions): Promise<SqlClient> {
  if (target.kind === "pglite") return openPGlite(target.directory, opts.lock);
  const description = `PostgreSQL at ${target.host}:${target.port}/${target.database} as ${target.user}`;
  const db = openPostgres({ url: target.url, description, maxConnections: opts.maxConnections ?? 6 });
  try {
    await db.query("SELECT 1");
  } catch (err) {
    await db.close().catch(() => undefined);
    const source = target.source === "DEKART_POSTGRES_HOST" ? "DEKART_POSTGRES_HOST (and DEKART_POSTGRES_PORT, _USER, _PASSWORD, _DB)" : "CHJOB_DATABASE_URL";
    throw new Error(`${source}: cannot reach the job store, ${description}: ${describeDbError(err)}`);
  }
  return db;
}

function variableOf(target: StoreTarget): string {
  if (target.kind === "pglite") return "CHJOB_DATA_DIR";
  return target.source === "DEKART_POSTGRES_HOST" ? "DEKART_POSTGRES_HOST" : "CHJOB_DATABASE_URL";
}

/** A database error in words, with PostgreSQL's code; never the connection URL. */
export function describeDbError(err: unknown): string {
  const e = err as Error & { code?: string };
  const message = String(e?.message ?? err).replace(/postgres(ql)?:\/\/[^\s]*/g, "<url>");
  return e?.code && !message.includes(e.code) ? `${message} (${e.code})` : message;
}
