// The embedded job store's SQL client: PGlite (PostgreSQL compiled to
// WebAssembly) in this process, persisted in a directory. Loaded lazily: it
// is an optional dependency needed only when no PostgreSQL server is configured.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { lockDirectory, type DirectoryLock } from "./dir-lock.js";
import type { Row, SqlClient, SqlRunner } from "./sql.js";

type PGliteModule = typeof import("@electric-sql/pglite");
type PGliteInstance = InstanceType<PGliteModule["PGlite"]>;

async function loadPGlite(): Promise<PGliteModule> {
  return import("@electric-sql/pglite").catch((err: Error) => {
    throw new Error(
      `the embedded job store (npm package @electric-sql/pglite) could not be loaded: ${err.message}. ` +
        "Install it with `npm install @electric-sql/pglite`, or set CHJOB_DATABASE_URL to a PostgreSQL server.",
    );
  });
}

/** Opens (creating if need be) the store in `directory`; takes its lock unless the caller holds it already. */
export async function openPGlite(directory: string, held?: DirectoryLock): Promise<SqlClient> {
  mkdirSync(dirname(directory), { recursive: true });
  const lock = held ?? lockDirectory(directory, "CHJOB_DATA_DIR");
  try {
    const { PGlite } = await loadPGlite();
    if (!existsSync(directory)) await initialise(PGlite, directory);
    const db = await PGlite.create(directory);
    // One process has this database to itself: nobody listens, so the triggers send no NOTIFY (src/store/migrations.ts).
    await db.exec("SET chjob.notify = 'off'");
    return new PGliteClient(db, directory, () => lock.release());
  } catch (err) {
    lock.release();
    throw err;
  }
}

/**
 * initdb into a directory beside the target, renamed into place when complete:
 * a first start interrupted (Ctrl-C, a failed check) leaves no half-made store.
 */
async function initialise(PGlite: PGliteModule["PGlite"], directory: string): Promise<void> {
  const parent = dirname(directory);
  const stem = `${basename(directory)}.init-`;
  for (const name of readdirSync(parent)) {
    if (name.startsWith(stem)) rmSync(join(parent, name), { recursive: true, force: true }); // left by an interrupted start
  }
  const building = join(parent, `${stem}${process.pid}`);
  const db = await PGlite.create(building);
  await db.close();
  renameSync(building, directory);
}

class PGliteClient implements SqlClient {
  readonly description: string;
  // PGlite runs no autovacuum: without VACUUM (ANALYZE) dead row versions pile up and the planner has no statistics.
  readonly needsVacuum = true;

  constructor(
    private readonly db: PGliteInstance,
    directory: string,
    private readonly onClose: () => void,
  ) {
    this.description = `embedded PostgreSQL (PGlite) at ${directory}`;
  }

  async query<T extends Row>(text: string, params: readonly unknown[] = []): Promise<T[]> {
    return (await this.db.query<T>(text, params as unknown[])).rows;
  }

  transaction<T>(body: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => body({ query: async <R extends Row>(text: string, params: readonly unknown[] = []) => (await tx.query<R>(text, params as unknown[])).rows }));
  }

  // One connection: a session is the instance itself.
  withSession<T>(body: (session: SqlRunner) => Promise<T>): Promise<T> {
    return body(this);
  }

  async close(): Promise<void> {
    try {
      await this.db.close();
    } finally {
      this.onClose();
    }
  }
}
