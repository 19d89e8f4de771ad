// test/run.mjs over the small test files of test/fixtures (compiled to dist/test/fixtures): what
// it counts, what it says and how it exits when a suite's setup throws, or a file crashes or exits
// non-zero.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

interface Run {
  out: string;
  /** `out` with each line marked "| ", for failure messages: the outer test/run.mjs reads its own
   * child's output for uvu's summary and the lines of ./support, and must not take these for it. */
  shown: string;
  code: number | null;
  /** The last line of stdout: test/run.mjs's "N passed, N failed, N skipped". */
  closing: string;
}

/** A node command in the repository, with an environment free of CI and the requirement variables. */
function node(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  for (const name of ["CI", "CHJOB_TEST_WITHOUT", "PGHOST", "PGPORT", "FORCE_COLOR"]) delete base[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...base, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const lines = out.trimEnd().split("\n");
      const shown = lines.map((line) => `| ${line}`).join("\n");
      resolve({ out, shown, code, closing: lines[lines.length - 1] ?? "" });
    });
  });
}

const runFixtures = (pattern: string, env: Record<string, string> = {}) =>
  node(["test/run.mjs", "--dir", "dist/test/fixtures", pattern], env);

const test = suite("test/run.mjs");

test("a suite whose before hook throws: the error is shown, its tests count as failed, exit 1", async () => {
  const run = await runFixtures("^setup-throws");
  assert.is(run.closing, "1 passed, 2 failed, 0 skipped", run.shown);
  assert.is(run.code, 1);
  assert.match(run.out, 'setup failed: "fixture setup throws": Error: fixture: the database did not start');
  assert.match(run.out, /failed:\n {2}setup-throws\.test\.js: setup failed: "fixture setup throws": Error: fixture: the database did not start/);
});

test("(why: uvu 0.5.6 alone drops the before hook's error and exits 0)", async () => {
  const run = await node(["dist/test/fixtures/setup-throws.test.js"]);
  assert.is(run.code, 0, run.shown);
  assert.match(run.out, /fixture setup throws\s+\(0 \/ 2\)/);
  assert.not.match(run.out, "the database did not start");
});

test("a file that crashes before uvu's summary counts as failed, quoting its stderr", async () => {
  const run = await runFixtures("^crashes");
  assert.is(run.closing, "0 passed, 1 failed, 0 skipped", run.shown);
  assert.is(run.code, 1);
  assert.match(run.out, /crashes\.test\.js: printed no uvu summary, exit 1; stderr ends:\n[\s\S]*Error: fixture: crashed while loading/);
});

test("a file whose tests pass but that exits non-zero counts as failed", async () => {
  const run = await runFixtures("^exits-nonzero");
  assert.is(run.closing, "1 passed, 1 failed, 0 skipped", run.shown);
  assert.is(run.code, 1);
  assert.match(run.out, "exits-nonzero.test.js: exit 3");
});

test.run();
