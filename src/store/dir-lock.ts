// An exclusive lock on a directory for this process. PGlite takes none, and
// two processes on one PGlite directory corrupt it. The lock file holds the
// holder's pid; a lock whose process is gone (killed) is stale and taken over.
import { ConfigurationConflictError } from "../errors.js";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { dirname, resolve } from "node:path";

export interface DirectoryLock {
  release(): void;
}

export class DirectoryLockedError extends ConfigurationConflictError {
  override readonly name = "DirectoryLockedError";
}

/** Lock files this process holds now: a file naming this pid is ours only if it is in here (else an earlier process with our pid left it). */
const held = new Set<string>();

/** Takes `<path>.lock` for this process or throws DirectoryLockedError naming the holder. */
export function lockDirectory(path: string, variable: string): DirectoryLock {
  const file = resolve(`${path}.lock`);
  mkdirSync(dirname(file), { recursive: true });
  for (let tries = 0; tries < 3; tries++) {
    let fd: number;
    try {
      fd = openSync(file, "wx");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number(readFileSync(file, "utf8").trim());
      if (Number.isInteger(holder) && holder > 0 && (holder === process.pid ? held.has(file) : isAlive(holder))) {
        throw new DirectoryLockedError(
          `${variable}: the job store ${path} is in use by process ${holder} (another chjob serve on the same data directory?); stop it, or give this one another CHJOB_DATA_DIR`,
        );
      }
      // Left by a process that is gone: take it over.
      rmSync(file, { force: true });
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    held.add(file);
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        held.delete(file);
        try {
          if (Number(readFileSync(file, "utf8").trim()) === process.pid) rmSync(file, { force: true });
        } catch {
          // already gone
        }
      },
    };
  }
  throw new DirectoryLockedError(`${variable}: could not take the lock ${file}; another process keeps taking it`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
