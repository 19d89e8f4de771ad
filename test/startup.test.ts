// The first start as a user sees it, with nothing set but what is named (no
// AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED either): a port that is taken
// is one line naming its variable and exit 2, and a normal start writes nothing
// on stderr on any supported Node.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { cleanEnv, MAIN } from "./support/service.js";

const NODE_MAJOR = Number(process.versions.node.split(".")[0]);
const EOL_LINE = "Node.js 20 reached end of life in April 2026";

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * `chjob serve` in a fresh directory; `stopAt`: SIGTERM once this is in its log. Every
 * variable of the caller's (CHJOB_, DEKART_, AWS_) is left out, so the AWS SDK's
 * warning is not silenced by the test runner's environment.
 */
function start(env: Record<string, string>, stopAt?: string): { child: ChildProcess; done: Promise<Run> } {
  const cwd = mkdtempSync(join(tmpdir(), "chjob-startup-"));
  const child = spawn(process.execPath, [MAIN, "serve"], {
    cwd,
    env: { ...cleanEnv(), CHJOB_GRPC_ADDRESS: "127.0.0.1:0", CHJOB_EMBEDDED_S3_ADDRESS: "127.0.0.1:0", CHJOB_DEMO_ROWS: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let stopping = false;
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d;
    if (stopAt !== undefined && !stopping && stdout.includes(stopAt)) stopping = child.kill("SIGTERM");
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const done = new Promise<Run>((resolve) =>
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      rmSync(cwd, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, done };
}
const serve = (env: Record<string, string>, stopAt?: string) => start(env, stopAt).done;

const SERVING = '"msg":"chjob serving"';
const show = (r: Run) => `exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
const messages = (r: Run) => r.stdout.trimEnd().split("\n").map((l) => (JSON.parse(l) as { msg: string }).msg);
/** The log lines a start that fails before serving may write: the Node line (on Node 20) and the failure. */
const failedStart = NODE_MAJOR < 22 ? [EOL_LINE, "chjob could not start"] : ["chjob could not start"];

/** A plain TCP listener on a free loopback port (as a second chjob or LocalStack would hold it). */
async function occupy(): Promise<{ address: string; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return { address: `127.0.0.1:${port}`, server };
}

const test = suite("startup");

test("CHJOB_EMBEDDED_S3_ADDRESS in use: one line naming the variable, exit 2, no stack trace", async () => {
  const busy = await occupy();
  try {
    const r = await serve({ CHJOB_EMBEDDED_S3_ADDRESS: busy.address });
    assert.is(r.code, 2, show(r));
    assert.is(
      r.stderr,
      `chjob: could not start: CHJOB_EMBEDDED_S3_ADDRESS: cannot listen on ${busy.address}: the port is in use (another chjob? LocalStack?); ` +
        "set CHJOB_EMBEDDED_S3_ADDRESS to a free address (port 0 picks one), or AWS_ENDPOINT to use that S3 server\n",
      show(r),
    );
    assert.equal(
      messages(r).map((m) => (m.startsWith(EOL_LINE) ? EOL_LINE : m)),
      failedStart,
      show(r),
    );
    assert.match(r.stdout, `"err":"CHJOB_EMBEDDED_S3_ADDRESS: cannot listen on ${busy.address}: the port is in use`);
  } finally {
    busy.server.close();
  }
});

test("CHJOB_GRPC_ADDRESS in use: our one line, exit 2, no grpc-js 'E No address added' line", async () => {
  const busy = await occupy();
  try {
    const r = await serve({ CHJOB_GRPC_ADDRESS: busy.address });
    assert.is(r.code, 2, show(r));
    assert.is(
      r.stderr,
      `chjob: could not start: CHJOB_GRPC_ADDRESS: cannot listen on ${busy.address}: the port is in use (another chjob?); set CHJOB_GRPC_ADDRESS to a free address\n`,
      show(r),
    );
    assert.equal(
      messages(r).map((m) => (m.startsWith(EOL_LINE) ? EOL_LINE : m)),
      failedStart,
      show(r),
    );
  } finally {
    busy.server.close();
  }
});

test("a start writes nothing on stderr: no AWS SDK Node-version warning; on Node 20 one log line says so instead", async () => {
  const r = await serve({}, SERVING);
  assert.is(r.code, 0, show(r));
  assert.is(r.stderr, "", show(r));
  const eol = messages(r).filter((m) => m.startsWith(EOL_LINE));
  assert.is(eol.length, NODE_MAJOR < 22 ? 1 : 0, show(r));
});

test("a user's own AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED is left as it is", async () => {
  const r = await serve({ AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "false" }, SERVING);
  assert.is(r.code, 0, show(r));
  // The SDK warns below Node 22 only: what the launcher quiets on Node 20 is there.
  if (NODE_MAJOR < 22) assert.match(r.stderr, "NodeVersionSupportWarning", show(r));
  else assert.is(r.stderr, "", show(r));
});

test("SIGTERM while starting: the service stops as soon as it is up, exit 0", async () => {
  // A free port known in advance, and a start held up ~3 s by an export probe that cannot
  // reach S3: once the gRPC port accepts connections, the start is not over yet.
  const free = await occupy();
  await new Promise((resolve) => free.server.close(resolve));
  const { child, done } = start({ CHJOB_GRPC_ADDRESS: free.address, DEKART_CLICKHOUSE_S3_ENDPOINT: "http://127.0.0.1:1", CHJOB_JOB_TIMEOUT: "3s" });
  const [host, port] = free.address.split(":") as [string, string];
  const deadline = Date.now() + 30_000;
  while (!(await accepts(host, Number(port))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGTERM");
  const r = await done;
  assert.is(r.code, 0, show(r));
  const log = messages(r);
  const signalled = log.indexOf("signal received");
  assert.ok(signalled >= 0 && signalled < log.indexOf("chjob serving"), show(r));
  assert.is(log.at(-1), "stopped", show(r));
  assert.is(r.stderr, "", show(r));
});

function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

test.run();
