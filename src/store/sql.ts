// The SQL seam under the job store: one PostgreSQL dialect, two drivers
// (PGlite in-process, a PostgreSQL server through `postgres`). The store
// writes its SQL once, with $1-style parameters, against this interface.

export type Row = Record<string, unknown>;

export interface SqlRunner {
  query<T extends Row = Row>(text: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface SqlClient extends SqlRunner {
  /** Runs `body` in one transaction on one connection; rolls back if it throws. */
  transaction<T>(body: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /**
   * Runs `body` on one connection held for its whole duration (session-level
   * advisory locks need that); other queries may run beside it on other connections.
   */
  withSession<T>(body: (session: SqlRunner) => Promise<T>): Promise<T>;
  /**
   * LISTEN on `channel` on a connection of its own, re-subscribing by itself after the
   * connection is lost; `onListen` runs after every (re)subscription. Absent where one
   * process has the database to itself (PGlite): there is nobody else to hear from.
   */
  listen?(channel: string, onNotify: (payload: string) => void, onListen: () => void): Promise<() => Promise<void>>;
  /** For messages: where the database is, with no credentials. */
  readonly description: string;
  /** Whether nothing vacuums and analyzes this database by itself (PGlite: no autovacuum). */
  readonly needsVacuum?: boolean;
  /** With listen: the name this client's writes carry in their notifications (its application_name). */
  readonly sender?: string;
  close(): Promise<void>;
}

/**
 * PostgreSQL error codes and driver errors that mean "the database went away or
 * is restarting", after which the same statement may succeed.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as Error & { code?: unknown }).code;
  if (typeof code !== "string") return false;
  // 08: connection exception; 57P01-03: admin shutdown, crash shutdown, cannot connect now.
  if (/^08/.test(code) || /^57P0[123]$/.test(code)) return true;
  return /^(CONNECTION_CLOSED|CONNECTION_ENDED|CONNECTION_DESTROYED|CONNECT_TIMEOUT|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code);
}

/** A double-quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A single-quoted SQL string literal. */
export function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}
