// PGlite's first open of a directory runs initdb (10 s or more on this machine).
// Tests start many services on fresh data directories: each gets a copy of one
// migrated template made once per machine, so only the first pays for initdb.
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { MIGRATIONS } from "../../src/store/migrations.js";
import { openStore } from "../../src/store/open.js";

// Named by the migrations' own text: a changed migration makes a new template.
const schemaHash = createHash("sha256")
  .update(JSON.stringify(MIGRATIONS.map((m) => m.statements('"chjob"', "chjob"))))
  .digest("hex")
  .slice(0, 12);
const TEMPLATE = join(tmpdir(), `chjob-test-pglite-${schemaHash}`);

async function template(): Promise<string> {
  const dir = join(TEMPLATE, "jobs");
  if (existsSync(dir)) return dir;
  const building = `${TEMPLATE}.${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  const store = await openStore({ kind: "pglite", directory: join(building, "jobs"), schema: "chjob" });
  await store.close();
  rmSync(join(building, "jobs.lock"), { force: true });
  try {
    renameSync(building, TEMPLATE);
  } catch {
    rmSync(building, { recursive: true, force: true }); // another process made it first
  }
  return dir;
}

/** Puts a migrated PGlite job store at `<dataDir>/jobs` unless one is there. */
export async function seedJobStore(dataDir: string): Promise<void> {
  const target = join(dataDir, "jobs");
  if (existsSync(target)) return;
  mkdirSync(dataDir, { recursive: true });
  cpSync(await template(), target, { recursive: true });
}
