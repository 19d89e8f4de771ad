// The service on a PostgreSQL job store: restart recovery with a stable and
// with a changing replica id (lease), a PostgreSQL restart in the middle of
// running jobs, PostgreSQL down while serving, and unreachable at start.
import { status as grpcStatus, type ServiceError } from "@grpc/grpc-js";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import { HealthCheckResponse_ServingStatus as Health } from "../gen/grpc/health/v1/health_pb.js";
import type { JobClient } from "../src/client.js";
import { closedPort } from "./support/fault-s3.js";
import { canRunOwnPostgres, dropSchema, freshSchema, PG_URL, startOwnPostgres, type OwnPostgres } from "./support/postgres.js";
import { requirePostgres, whenAvailable } from "./support/requirements.js";
import { BIG_EXPORT } from "./support/exports.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

const test = whenAvailable(await requirePostgres(), suite("postgres-store"));

const schemas: string[] = [];

function pgEnv(extra: Record<string, string> = {}, url = PG_URL): Record<string, string> {
  const schema = freshSchema();
  schemas.push(schema);
  return { CHJOB_DATABASE_URL: url, CHJOB_DATABASE_SCHEMA: schema, CHJOB_MAX_CONCURRENT_JOBS: "1", CHJOB_PROGRESS_INTERVAL: "100ms", ...extra };
}

test.after(async () => {
  for (const s of schemas) await dropSchema(s).catch(() => undefined);
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > until) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function killAndRestart(svc: ServiceProcess, env: Record<string, string>): Promise<ServiceProcess> {
  svc.child.kill("SIGKILL");
  await svc.exited;
  const next = await startService({ env });
  svc.cleanup();
  return next;
}

/** Statuses as a watcher saw them, repeats (progress) merged. */
function statuses(states: Job[]): JobStatus[] {
  return states.map((s) => s.status).filter((s, i, all) => i === 0 || all[i - 1] !== s);
}

test("SIGKILL, then a start with the same CHJOB_REPLICA_ID: the running job runs again at once (attempt 2), the finished one is kept", async () => {
  const env = pgEnv({ CHJOB_REPLICA_ID: "replica-a" });
  let svc = await startService({ env });
  try {
    let client = svc.client();
    const done = (await collect(client.watchJob((await client.createJob({ reportId: "pg", queryId: "small", queryText: "SELECT 1" })).id).states)).at(-1)!;
    assert.is(done.status, JobStatus.DONE);
    assert.is(done.replica, "replica-a");
    const big = await client.createJob({ reportId: "pg", queryId: "big", queryText: BIG_EXPORT });
    await waitFor(async () => (await client.getJob(big.id)).status === JobStatus.RUNNING);
    svc = await killAndRestart(svc, env);
    client = svc.client();
    assert.is((await client.getJob(done.id)).status, JobStatus.DONE);
    const end = (await collect(client.watchJob(big.id).states)).at(-1)!;
    assert.is(end.status, JobStatus.DONE, end.error);
    assert.is(end.attempt, 2);
    assert.is(end.replica, "replica-a");
  } finally {
    await svc.stop();
    svc.cleanup();
  }
});

test("SIGKILL, then a start under another replica id: the job is taken over once its lease (CHJOB_LEASE) runs out", async () => {
  const env = pgEnv({ CHJOB_LEASE: "2s" });
  let svc = await startService({ env });
  try {
    let client = svc.client();
    const big = await client.createJob({ reportId: "pg", queryId: "lease", queryText: BIG_EXPORT });
    await waitFor(async () => (await client.getJob(big.id)).status === JobStatus.RUNNING);
    const before = await client.getJob(big.id);
    const killedAt = Date.now();
    svc = await killAndRestart(svc, env);
    client = svc.client();
    const states = await collect(client.watchJob(big.id).states);
    const rerun = states.find((s) => s.attempt === 2);
    assert.ok(rerun, `a second attempt: ${states.map((s) => `${JobStatus[s.status]}#${s.attempt}`)}`);
    const end = states.at(-1)!;
    assert.is(end.status, JobStatus.DONE, end.error);
    assert.is(end.attempt, 2);
    assert.is.not(end.replica, before.replica, "another replica took it over");
    assert.ok(Date.now() - killedAt < 60_000);
  } finally {
    await svc.stop();
    svc.cleanup();
  }
});

const ownTest = whenAvailable(canRunOwnPostgres() && (await requirePostgres()), suite("postgres-store (own server)"));
let own: OwnPostgres | undefined;
ownTest.before(async () => {
  own = await startOwnPostgres();
});
ownTest.after(() => own?.remove());

ownTest("PostgreSQL restarted while jobs run and wait: no job and no status is lost", async () => {
  const svc = await startService({ env: pgEnv({}, own!.url) });
  try {
    const client = svc.client();
    const jobs: Job[] = [];
    for (let i = 0; i < 4; i++) jobs.push(await client.createJob({ reportId: "pgrestart", queryId: `q${i}`, queryText: "SELECT number FROM numbers(3000000)" }));
    const watched = jobs.map((j) => collect(client.watchJob(j.id).states));
    await waitFor(async () => (await client.getJob(jobs[0]!.id)).status !== JobStatus.PENDING);
    own!.restart();
    const seen = await Promise.all(watched);
    const full = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.DONE];
    for (const [i, states] of seen.entries()) {
      // Each watcher starts wherever its job was, then sees every later status.
      const got = statuses(states);
      assert.equal(got, full.slice(full.indexOf(got[0]!)), `job ${i}: ${states.at(-1)!.error}`);
      if (i > 0) assert.is(got[0], JobStatus.PENDING, "the jobs behind the first were waiting when watched");
    }
    for (const j of jobs) {
      const stored = await client.getJob(j.id);
      assert.is(stored.status, JobStatus.DONE, "the stored state is the last one too");
      assert.is(stored.attempt, 1);
    }
  } finally {
    await svc.stop();
    svc.cleanup();
  }
});

ownTest("PostgreSQL down while serving: health NOT_SERVING and UNAVAILABLE answers; both recover by themselves", async () => {
  const svc = await startService({ env: pgEnv({ CHJOB_HEALTH_INTERVAL: "200ms" }, own!.url) });
  try {
    const client: JobClient = svc.client();
    const job = await client.createJob({ reportId: "pgdown", queryId: "q", queryText: "SELECT 1" });
    await collect(client.watchJob(job.id).states);
    own!.stop();
    await waitFor(async () => (await client.healthCheck("")) === Health.NOT_SERVING, 10_000);
    const err = (await client.getJob(job.id).catch((e: unknown) => e)) as ServiceError;
    assert.is(err.code, grpcStatus.UNAVAILABLE);
    assert.match(err.details, /job store .* is unreachable/);
    assert.not.match(err.details, /postgres:\/\//, "no URL in the message");
    own!.start();
    await waitFor(async () => (await client.healthCheck("")) === Health.SERVING, 15_000);
    assert.is((await client.getJob(job.id)).status, JobStatus.DONE);
  } finally {
    await svc.stop();
    svc.cleanup();
  }
});

test("PostgreSQL unreachable at start: exits naming host, port and database, never the password", async () => {
  const port = await closedPort();
  const err = await startService({ env: { CHJOB_DATABASE_URL: `postgres://chjob:sekret-pw@127.0.0.1:${port}/jobsdb`, CHJOB_DATABASE_SCHEMA: "chjob" } }).then(
    () => undefined,
    (e: Error) => e,
  );
  assert.ok(err, "the service must not start");
  assert.match(err!.message, /exited with 1/);
  assert.match(err!.message, new RegExp(`CHJOB_DATABASE_URL: cannot reach the job store, PostgreSQL at 127\\.0\\.0\\.1:${port}/jobsdb as chjob`));
  assert.not.match(err!.message, /sekret-pw/);
});

test.run();
ownTest.run();
