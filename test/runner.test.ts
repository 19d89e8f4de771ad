// test/run.mjs over the small test files of test/fixtures (compiled to dist/test/fixtures): what
// it counts, what it says and how it exits when a suite's setup throws, a file crashes or exits
// non-zero, or a program the tests need is missing (CHJOB_TEST_WITHOUT, with and without CI=true).
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
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

function listen(server: Server, at: number | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    if (typeof at === "string") server.listen(at, () => resolve());
    else server.listen(at, "127.0.0.1", () => resolve());
  });
}

const portOf = (server: Server) => (server.address() as { port: number }).port;

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

test("a program that is there: every test runs", async () => {
  const run = await runFixtures("^needs-program");
  assert.is(run.closing, "4 passed, 0 failed, 0 skipped", run.shown);
  assert.is(run.code, 0);
  assert.not.match(run.out, "missing");
  assert.match(run.out, "fixture: the before hook ran");
});

test("a missing program (CHJOB_TEST_WITHOUT), CI unset: its tests are skipped and counted, with the install command", async () => {
  const run = await runFixtures("^needs-program", { CHJOB_TEST_WITHOUT: "other,fixture-program" });
  assert.is(run.closing, "1 passed, 0 failed, 3 skipped", run.shown);
  assert.is(run.code, 0);
  assert.match(
    run.out,
    "skipped: needs fixture-program, which is counted as missing (CHJOB_TEST_WITHOUT); the tests that need it are skipped (install: apt-get install fixture-program)",
  );
  assert.match(run.out, "missing: fixture-program, which is counted as missing (CHJOB_TEST_WITHOUT): its tests in needs-program.test.js skipped; install: apt-get install fixture-program");
  assert.not.match(run.out, "fixture: the before hook ran", "the skipped suite's hooks do not run");
});

test("a missing program under CI=true: its tests fail, saying which program and how to install it", async () => {
  const run = await runFixtures("^needs-program", { CHJOB_TEST_WITHOUT: "fixture-program", CI: "true" });
  assert.is(run.closing, "1 passed, 3 failed, 0 skipped", run.shown);
  assert.is(run.code, 1);
  assert.match(run.out, "CI=true: the tests that need it fail (install: apt-get install fixture-program)");
  assert.match(run.out, "(install: apt-get install fixture-program); CI=true makes this a failure");
  assert.match(run.out, "its tests in needs-program.test.js failed (CI=true)");
});

test("PostgreSQL: runs when something answers at PGHOST:PGPORT (TCP or a socket directory), skipped when not", async () => {
  const server = createServer((socket) => socket.destroy());
  const socketDir = mkdtempSync(join(tmpdir(), "chjob-pgsock-"));
  const unix = createServer((socket) => socket.destroy());
  const closed = createServer();
  try {
    await listen(server, 0);
    const port = portOf(server);
    const up = await runFixtures("^postgres", { PGHOST: "127.0.0.1", PGPORT: String(port) });
    assert.is(up.closing, "1 passed, 0 failed, 0 skipped", up.shown);

    await listen(unix, join(socketDir, ".s.PGSQL.6543"));
    const viaSocket = await runFixtures("^postgres", { PGHOST: socketDir, PGPORT: "6543" });
    assert.is(viaSocket.closing, "1 passed, 0 failed, 0 skipped", viaSocket.shown);

    const simulated = await runFixtures("^postgres", { PGHOST: "127.0.0.1", PGPORT: String(port), CHJOB_TEST_WITHOUT: "postgresql" });
    assert.is(simulated.closing, "0 passed, 0 failed, 1 skipped", simulated.shown);

    await listen(closed, 0);
    const closedPort = portOf(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const down = await runFixtures("^postgres", { PGHOST: "127.0.0.1", PGPORT: String(closedPort) });
    assert.is(down.closing, "0 passed, 0 failed, 1 skipped", down.shown);
    assert.is(down.code, 0);
    assert.match(down.out, `skipped: needs postgresql, which does not answer at 127.0.0.1:${closedPort}`);
    assert.match(down.out, "install: apt-get install postgresql && service postgresql start");
  } finally {
    server.close();
    unix.close();
    rmSync(socketDir, { recursive: true, force: true });
  }
});

test("the suites that need clickhouse-server or python3-grpcio are skipped whole without them, none failed", async () => {
  const run = await node(["test/run.mjs", "http-engine|clickhouse-server|python-client"], {
    CHJOB_TEST_WITHOUT: "clickhouse-server,python3-grpcio",
  });
  const counts = /^(\d+) passed, (\d+) failed, (\d+) skipped$/.exec(run.closing);
  assert.ok(counts, run.shown);
  assert.equal([counts![1], counts![2]], ["0", "0"], run.shown);
  assert.ok(Number(counts![3]) >= 3, run.shown);
  assert.is(run.code, 0);
  assert.match(run.out, /^missing: clickhouse-server, .*: its tests in clickhouse-server\.test\.js, http-engine\.test\.js skipped; install: apt-get install clickhouse-server$/m);
  assert.match(run.out, /^missing: python3-grpcio, .*: its tests in python-client\.test\.js skipped; install: apt-get install python3-grpcio$/m);
});

test.run();
