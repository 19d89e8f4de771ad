// Durability on the embedded store (PGlite): jobs survive SIGKILL and SIGTERM,
// running jobs run again, waiting ones keep their place, request ids and page
// tokens outlive the process, and one data directory serves one process.
// Each case kills or stops a real `chjob serve` and restarts it on the same data.
import { rmSync } from "node:fs";
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import type { JobClient } from "../src/client.js";
import { getObject, s3Client } from "./support/s3.js";
import { BIG_EXPORT, bigExportSize } from "./support/exports.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

const test = suite("durability");



const ENV = { CHJOB_MAX_CONCURRENT_JOBS: "1", CHJOB_PROGRESS_INTERVAL: "100ms" };

async function runJob(client: JobClient, req: { reportId: string; queryId: string; queryText: string }): Promise<Job> {
  const job = await client.createJob(req);
  return (await collect(client.watchJob(job.id).states)).at(-1)!;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function kill(svc: ServiceProcess): Promise<void> {
  svc.child.kill("SIGKILL");
  await svc.exited;
  assert.is(svc.child.signalCode, "SIGKILL");
}

test("SIGKILL mid-export, restart on the same data: finished jobs stay, the running one runs again (attempt 2) to a complete result, the waiting one keeps its place", async () => {
  const first = await startService({ env: ENV });
  let second: ServiceProcess | undefined;
  try {
    let client = first.client();
    const old = await runJob(client, { reportId: "killed", queryId: "old", queryText: "SELECT 'old' AS v" });
    assert.is(old.status, JobStatus.DONE, old.error);
    const big = await client.createJob({ reportId: "killed", queryId: "big", queryText: BIG_EXPORT });
    await waitFor(async () => Number((await client.getJob(big.id)).progress?.rowsRead ?? 0) > 0);
    const waiting = await client.createJob({ reportId: "killed", queryId: "waiting", queryText: "SELECT 2 AS two" });
    assert.is((await client.getJob(waiting.id)).status, JobStatus.PENDING);
    const beforeKill = await client.getJob(big.id);
    assert.is(beforeKill.status, JobStatus.RUNNING);
    assert.is(beforeKill.attempt, 1);
    await kill(first);

    second = await startService({ cwd: first.cwd, env: ENV });
    client = second.client();
    const kept = await client.getJob(old.id);
    assert.is(kept.status, JobStatus.DONE);
    assert.is(kept.resultUri, old.resultUri);
    assert.equal(
      (await client.listJobs({ reportId: "killed" })).jobs.map((j) => j.id),
      [waiting.id, big.id, old.id],
      "ListJobs finds every job, newest first",
    );

    const bigStates = await collect(client.watchJob(big.id).states);
    const bigEnd = bigStates.at(-1)!;
    assert.is(bigEnd.status, JobStatus.DONE, bigEnd.error);
    assert.is(bigEnd.attempt, 2, "the re-run counts as a second attempt");
    assert.ok(bigStates.every((s) => s.attempt === 2), `a watcher after the restart sees attempt 2 only: ${bigStates.map((s) => s.attempt)}`);
    assert.is(bigEnd.replica, JSON.parse(second.logs.find((l) => l.includes('"msg":"chjob serving"'))!).replica);
    const s3 = s3Client(second.s3Endpoint);
    const [bucket, ...key] = bigEnd.resultUri.slice("s3://".length).split("/");
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key.join("/") }));
    assert.is(head.ContentLength, bigExportSize(), "the result is complete");
    assert.is(Number(bigEnd.resultSize), bigExportSize());

    const waitingEnd = (await collect(client.watchJob(waiting.id).states)).at(-1)!;
    assert.is(waitingEnd.status, JobStatus.DONE, waitingEnd.error);
    assert.is(waitingEnd.attempt, 1);
    assert.is((await getObject(s3, waitingEnd.resultUri)).toString(), '"two"\n2\n');
    assert.ok(second.logs.some((l) => l.includes("will run again")), "the restart says it found a job to run again");
  } finally {
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
    await second?.stop();
    rmSync(first.cwd, { recursive: true, force: true });
  }
});

test("SIGTERM: the running job ends CANCELLED, the waiting one stays queued and runs after a restart; request_id and page tokens outlive the process", async () => {
  const first = await startService({ env: { ...ENV, CHJOB_SHUTDOWN_GRACE: "0s" } });
  let second: ServiceProcess | undefined;
  try {
    let client = first.client();
    const long = await client.createJob({ reportId: "term", queryId: "long", queryText: "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)" });
    await waitFor(async () => (await client.getJob(long.id)).status === JobStatus.RUNNING);
    const request = { reportId: "term", queryId: "queued", queryText: "SELECT 'queued' AS v", requestId: "retry-me_1" };
    const queued = await client.createJob(request);
    assert.is(queued.requestId, "retry-me_1");
    assert.is((await client.createJob(request)).id, queued.id, "a retried CreateJob returns the same job");
    const firstPage = await client.listJobs({ reportId: "term", pageSize: 1 });
    assert.equal(firstPage.jobs.map((j) => j.id), [queued.id]);
    assert.is(await first.stop(), 0);

    second = await startService({ cwd: first.cwd, env: ENV });
    client = second.client();
    const longEnd = await client.getJob(long.id);
    assert.is(longEnd.status, JobStatus.CANCELLED);
    assert.match(longEnd.error, /shut down/);
    const queuedEnd = (await collect(client.watchJob(queued.id).states)).at(-1)!;
    assert.is(queuedEnd.status, JobStatus.DONE, queuedEnd.error);
    assert.is(queuedEnd.attempt, 1);

    const again = await client.createJob(request);
    assert.is(again.id, queued.id, "the same request_id after a restart: the same job, nothing new");
    assert.is(again.status, JobStatus.DONE);
    assert.is((await client.listJobs({ reportId: "term" })).jobs.length, 2);
    const conflict = (await client.createJob({ ...request, queryText: "SELECT 'other' AS v" }).catch((e: unknown) => e)) as ServiceError;
    assert.is(conflict.code, grpcStatus.ALREADY_EXISTS);
    assert.match(conflict.details, new RegExp(`request_id retry-me_1 .*job ${queued.id}`));

    const nextPage = await client.listJobs({ reportId: "term", pageSize: 1, pageToken: firstPage.nextPageToken });
    assert.equal(nextPage.jobs.map((j) => j.id), [long.id], "a page token from before the restart still works");
  } finally {
    await first.stop().catch(() => undefined);
    await second?.stop();
    rmSync(first.cwd, { recursive: true, force: true });
  }
});

test("CHJOB_MAX_ATTEMPTS: a job whose process died that many times ends FAILED, saying so", async () => {
  const env = { ...ENV, CHJOB_MAX_ATTEMPTS: "1" };
  const first = await startService({ env });
  let second: ServiceProcess | undefined;
  try {
    const client = first.client();
    const big = await client.createJob({ reportId: "attempts", queryId: "q", queryText: BIG_EXPORT });
    await waitFor(async () => (await client.getJob(big.id)).status === JobStatus.RUNNING);
    await kill(first);
    second = await startService({ cwd: first.cwd, env });
    const end = (await collect(second.client().watchJob(big.id).states)).at(-1)!;
    assert.is(end.status, JobStatus.FAILED);
    assert.match(end.error, /^gave up after 1 attempts: the replica running it \(.+\) stopped before it finished$/);
  } finally {
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill("SIGKILL");
    await second?.stop();
    rmSync(first.cwd, { recursive: true, force: true });
  }
});

test("one data directory, one process: a second service on it is refused, naming the directory and the holder's pid", async () => {
  const first = await startService({ env: ENV });
  try {
    const second = await startService({ cwd: first.cwd, env: ENV, timeoutMs: 20_000 }).then(
      () => undefined,
      (err: Error) => err,
    );
    assert.ok(second, "the second service did not start");
    assert.match(second!.message, /exited with 2/);
    assert.match(second!.message, new RegExp(`CHJOB_DATA_DIR: the job store .*jobs is in use by process ${first.child.pid}`));
    assert.not.match(second!.message, /\n\s+at /, "no stack trace");
    // The first one is unharmed.
    assert.is((await runJob(first.client(), { reportId: "lock", queryId: "q", queryText: "SELECT 1" })).status, JobStatus.DONE);
  } finally {
    await first.stop();
    first.cleanup();
  }
});

test.run();
