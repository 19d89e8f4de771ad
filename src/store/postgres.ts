// The job store's SQL client for a PostgreSQL server, through `postgres`
// (porsager/postgres): a small pool, parameterised text queries, and LISTEN
// that re-subscribes by itself after a reconnect.
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { quoteIdent, type Row, type SqlClient, type SqlRunner } from "./sql.js";

export interface PostgresOptions {
  url: string;
  /** For messages: host:port/database, no credentials. */
  description: string;
  maxConnections: number;
}

export function openPostgres(opts: PostgresOptions): SqlClient {
  // Each client's own application_name: the triggers put it in their notifications, so this
  // process can tell its own writes (already known at commit) from other replicas'.
  const sender = `chjob-${randomBytes(6).toString("hex")}`;
  const sql = postgres(opts.url, {
    max: opts.maxConnections,
    connection: { application_name: sender },
    connect_timeout: 10,
    idle_timeout: 60,
    // NOTICEs (e.g. "schema already exists, skipping") are not for the service's log.
    onnotice: () => undefined,
  });
  return new PostgresClient(sql, opts, sender);
}

type Sql = ReturnType<typeof postgres>;

class PostgresClient implements SqlClient {
  readonly description: string;

  constructor(
    private readonly sql: Sql,
    private readonly opts: PostgresOptions,
    readonly sender: string,
  ) {
    this.description = opts.description;
  }

  async query<T extends Row>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.sql.unsafe(text, params as never[], { prepare: true })) as unknown as T[];
  }

  async transaction<T>(body: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return (await this.sql.begin((tx) => body(runner(tx)))) as T;
  }

  async withSession<T>(body: (session: SqlRunner) => Promise<T>): Promise<T> {
    const reserved = await this.sql.reserve();
    try {
      return await body(runner(reserved));
    } finally {
      reserved.release();
    }
  }

  /**
   * A connection of its own for LISTEN. The driver's own listen() gives up re-subscribing
   * when the server stays away longer than one connect timeout: this one keeps trying.
   */
  async listen(channel: string, onNotify: (payload: string) => void, onListen: () => void): Promise<() => Promise<void>> {
    let closed = false;
    let subscribing: Promise<void> | undefined;
    // onnotify and onclose are the driver's (documented in its README, not in its types).
    const options = {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      connect_timeout: 10,
      fetch_types: false,
      onnotice: () => undefined,
      onnotify: (c: string, payload: string) => {
        if (c === channel) onNotify(payload);
      },
      onclose: () => {
        if (!closed) subscribing ??= subscribe().finally(() => (subscribing = undefined));
      },
    };
    const conn = postgres(this.opts.url, options as Parameters<typeof postgres>[1]);
    const subscribe = async () => {
      for (let attempt = 1; !closed; attempt++) {
        try {
          await conn.unsafe(`LISTEN ${quoteIdent(channel)}`);
          onListen();
          return;
        } catch (err) {
          if (attempt === 1 && !subscribing) throw err;
          await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** attempt, 2000)));
        }
      }
    };
    await subscribe();
    return async () => {
      closed = true;
      await conn.end({ timeout: 1 });
    };
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}

function runner(sql: { unsafe: Sql["unsafe"] }): SqlRunner {
  return { query: async <T extends Row>(text: string, params: readonly unknown[] = []) => (await sql.unsafe(text, params as never[], { prepare: true })) as unknown as T[] };
}
