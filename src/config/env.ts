// Where the configuration's variables come from: `<cwd>/.env`, with the real environment winning.

import * as fs from "node:fs";
import * as path from "node:path";
import { parseEnv } from "node:util";

export type Env = Record<string, string | undefined>;

/**
 * Reads `<cwd>/.env` (if present) with node's util.parseEnv and overlays the real environment on
 * it: a variable set in `processEnv` (even to "") wins over the file. A missing .env is fine; an
 * unreadable one (permissions, a directory) throws an Error naming the file.
 */
export function loadEnv(cwd: string, processEnv: Env): Env {
  const file = path.join(cwd, ".env");
  let text: string | undefined;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`.env: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  const fromFile: Env = text === undefined ? {} : { ...parseEnv(text) };
  const merged: Env = { ...fromFile };
  for (const [k, v] of Object.entries(processEnv)) {
    if (v !== undefined) merged[k] = v;
  }
  return merged;
}
