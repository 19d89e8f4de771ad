// The job store's SQL client for a PostgreSQL server, through `postgres`
// (porsager/postgres): a small pool, parameterised text queries, and LISTEN
// that re-subscribes by itself after a reconnect.
import postgres from "postgres";
import type { Row, SqlClient, SqlRunner } from "./sql.js";

export interface PostgresOptions {
  url: string;
  /** For messages: host:port/database, no credentials. */
  description: string;
  maxConnections: number;
}

export function openPostgres(opts: PostgresOptions): SqlClient {
  const sql = postgres(opts.url, {
    max: opts.maxConnections,
    connect_timeout: 10,
    idle_timeout: 60,
    // NOTICEs (e.g. "schema already exists, skipping") are not for the service's log.
    onnotice: () => undefined,
    // Numbers come back as float8 casts from the SQL itself; keep the driver's defaults otherwise.
    prepare: true,
  });
  return new PostgresClient(sql, opts.description);
}

type Sql = ReturnType<typeof postgres>;

class PostgresClient implements SqlClient {
  constructor(
    private readonly sql: Sql,
    readonly description: string,
  ) {}

  async query<T extends Row>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.sql.unsafe(text, params as never[])) as unknown as T[];
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

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}

function runner(sql: { unsafe: Sql["unsafe"] }): SqlRunner {
  return { query: async <T extends Row>(text: string, params: readonly unknown[] = []) => (await sql.unsafe(text, params as never[])) as unknown as T[] };
}
