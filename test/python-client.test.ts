// The README's Python snippet (the ```python block of "Call it from Python"), run verbatim
// with python3 + grpcio against a real service, after the README's `npx buf build` step.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus } from "../gen/chjob/v1/job_service_pb.js";
import { PYTHON3_GRPCIO, python3WithGrpc, requireProgram, whenAvailable } from "./support/requirements.js";
import { cleanEnv, startService, type ServiceProcess } from "./support/service.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

/** The README's commands and snippet of the Python step. */
function readmeSnippet(): { buildCommand: string; script: string; fileName: string } {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const start = /^### .*Call it from Python$/m.exec(readme)?.index ?? -1;
  assert.ok(start >= 0, 'README has a "### … Call it from Python" step');
  const section = readme.slice(start, readme.indexOf("\n### ", start + 5));
  const script = /```python\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(script, "the step has a ```python block");
  const buildCommand = /npx buf build -o (\S+)/.exec(section);
  assert.ok(buildCommand, "the step builds the descriptors with `npx buf build -o …`");
  const fileName = /python3 (\S+\.py)/.exec(section)?.[1];
  assert.ok(fileName, "the step says how to run the script (python3 <file>.py)");
  assert.ok(script!.includes(`open("${buildCommand![1]}", "rb")`), "the script reads the file the build step writes");
  return { buildCommand: buildCommand![1]!, script: script!, fileName: fileName! };
}

// Skipped without python3 and its grpc module (failed under CI=true): ./support/requirements.ts.
const test = whenAvailable(
  requireProgram(PYTHON3_GRPCIO),
  suite<{ svc: ServiceProcess; python: string; dir: string }>("python-client"),
);

test.before(async (ctx) => {
  const python = python3WithGrpc();
  if (!python) {
    throw new Error(
      "python3 with grpcio and protobuf is needed for this test: `apt install python3-grpcio python3-protobuf` " +
        "or `python3 -m pip install grpcio protobuf` (or set PYTHON to such an interpreter)",
    );
  }
  ctx.python = python;
  ctx.dir = mkdtempSync(join(tmpdir(), "chjob-python-"));
  ctx.svc = await startService({ env: { CHJOB_DEMO_ROWS: "20000" }, timeoutMs: 60_000 });
});

test.after(async (ctx) => {
  if (ctx.svc) assert.is(await ctx.svc.stop(), 0);
  ctx.svc?.cleanup();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

test("the README's grpcio snippet creates a job and watches it to DONE", async (ctx) => {
  const { buildCommand, script, fileName } = readmeSnippet();
  // `npx buf build -o <file>` in the repository, written where the script runs.
  execFileSync(join(ROOT, "node_modules/.bin/buf"), ["build", "-o", join(ctx.dir, buildCommand)], { cwd: ROOT, stdio: "pipe" });
  writeFileSync(join(ctx.dir, fileName), script);
  const r = spawnSync(ctx.python, [fileName], {
    cwd: ctx.dir,
    env: { ...cleanEnv(), CHJOB_GRPC_ADDRESS: ctx.svc.grpcAddress },
    encoding: "utf8",
    timeout: 60_000,
  });
  const shown = `exit ${r.status}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
  assert.is(r.status, 0, shown);
  const lines = r.stdout.trimEnd().split("\n");
  assert.ok(lines.includes("JOB_STATUS_DONE"), shown);
  const last = JSON.parse(r.stdout.slice(r.stdout.indexOf("{"))) as { id: string; status: string; resultUri: string; reportId: string };
  assert.is(last.status, "JOB_STATUS_DONE");
  assert.is(last.resultUri, `s3://dekart-dev-local/${last.id}.csv`);
  const job = await ctx.svc.client().getJob(last.id);
  assert.is(job.status, JobStatus.DONE);
  assert.is(job.reportId, "python");
});

test.run();
