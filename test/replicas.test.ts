// Several replicas, one service: three real `chjob serve` processes on one
// PostgreSQL (a private server, so the last case can restart it), each with its
// own chDB data directory, sharing one S3 server started here. Calls land on
// any replica; watch, cancel and supersede cross them; a replica that dies or
// stops loses no job.
import { HeadObjectCommand } from "@aws-sdk/client-s3";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, type Job } from "../gen/chjob/v1/job_service_pb.js";
import type { JobClient } from "../src/client.js";
import { startStandaloneS3, type StandaloneS3 } from "./support/fault-s3.js";
import { canRunOwnPostgres, startOwnPostgres, type OwnPostgres } from "./support/postgres.js";
import { requirePostgres, whenAvailable } from "./support/requirements.js";
import { getObject, s3Client } from "./support/s3.js";
import { BIG_EXPORT, bigExportSize } from "./support/exports.js";
import { collect, startService, type ServiceProcess } from "./support/service.js";

interface Ctx {
  pg: OwnPostgres;
  s3: StandaloneS3;
  replicas: ServiceProcess[];
}

const test = whenAvailable(canRunOwnPostgres() && (await requirePostgres()), suite<Ctx>("replicas"));

const KEY = "replica-key";
const SECRET = "replica-secret";
const LONG_QUERY = "SELECT sum(cityHash64(number)) FROM numbers(1000000000000)";
const FULL = [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.READING_RESULTS, JobStatus.DONE];

function env(ctx: Ctx, name: string): Record<string, string> {
  return {
    CHJOB_DATABASE_URL: ctx.pg.url,
    CHJOB_DATABASE_SCHEMA: "chjob",
    CHJOB_REPLICA_ID: name,
    CHJOB_LEASE: "2s",
    CHJOB_MAX_CONCURRENT_JOBS: "2",
    CHJOB_PROGRESS_INTERVAL: "100ms",
    CHJOB_SHUTDOWN_GRACE: "0s",
    AWS_ENDPOINT: ctx.s3.endpoint,
    AWS_ACCESS_KEY_ID: KEY,
    AWS_SECRET_ACCESS_KEY: SECRET,
    DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: "replica-out/files",
    DEKART_CLOUD_STORAGE_BUCKET: "replica-results",
  };
}

let serial = 0;
async function startReplica(ctx: Ctx): Promise<ServiceProcess> {
  return startService({ env: env(ctx, `replica-${++serial}`), timeoutMs: 60_000 });
}

test.before(async (ctx) => {
  ctx.pg = await startOwnPostgres();
  ctx.s3 = await startStandaloneS3({ buckets: ["replica-out", "replica-results"], accessKeyId: KEY, secretAccessKey: SECRET });
  ctx.replicas = [];
  for (let i = 0; i < 3; i++) ctx.replicas.push(await startReplica(ctx));
});

test.after(async (ctx) => {
  for (const r of ctx.replicas ?? []) {
    await r.stop().catch(() => undefined);
    r.cleanup();
  }
  await ctx.s3?.cleanup();
  ctx.pg?.remove();
});

const clients = (ctx: Ctx): JobClient[] => ctx.replicas.map((r) => r.client());
const replicaName = (svc: ServiceProcess): string => JSON.parse(svc.logs.find((l) => l.includes('"msg":"chjob serving"'))!).replica;
const byName = (ctx: Ctx, name: string): ServiceProcess => ctx.replicas.find((r) => replicaName(r) === name)!;

function statuses(states: Job[]): JobStatus[] {
  return states.map((s) => s.status).filter((s, i, all) => i === 0 || all[i - 1] !== s);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > until) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

const stoppedHere = (svc: ServiceProcess, id: string) => svc.logs.some((l) => l.includes('"msg":"job stopped here') && l.includes(id));


test("any call on any replica: created on one, watched on the other two (every status in order), listed and read everywhere", async (ctx) => {
  const [a, b, c] = clients(ctx);
  const job = await a!.createJob({ reportId: "any", queryId: "q", queryText: "SELECT number FROM numbers(3000000)" });
  const [onB, onC] = await Promise.all([collect(b!.watchJob(job.id).states), collect(c!.watchJob(job.id).states)]);
  for (const states of [onB, onC]) {
    const seen = statuses(states);
    assert.equal(seen, FULL.slice(FULL.indexOf(seen[0]!)), `${seen}`);
    assert.is(states.at(-1)!.status, JobStatus.DONE);
  }
  for (const client of [a!, b!, c!]) {
    assert.is((await client.getJob(job.id)).status, JobStatus.DONE);
    assert.ok((await client.listJobs({ reportId: "any" })).jobs.some((j) => j.id === job.id));
  }
  assert.ok(ctx.replicas.map(replicaName).includes((await a!.getJob(job.id)).replica), "Job.replica names one of the replicas");
});

test("a status reaches a watcher on another replica within tens of milliseconds", async (ctx) => {
  const [a, b] = clients(ctx);
  const job = await a!.createJob({ reportId: "latency", queryId: "q", queryText: "SELECT 1" });
  const stamps: Array<{ status: JobStatus; at: number; updated: number }> = [];
  for await (const s of b!.watchJob(job.id).states) {
    stamps.push({ status: s.status, at: Date.now(), updated: Number(s.updatedAt!.seconds) * 1000 + Math.floor(s.updatedAt!.nanos / 1e6) });
  }
  assert.is(stamps.at(-1)!.status, JobStatus.DONE);
  // updated_at is the database's clock on this machine: the same clock as Date.now().
  const worst = Math.max(...stamps.slice(1).map((s) => s.at - s.updated));
  assert.ok(worst < 500, `slowest status took ${worst} ms to reach the other replica`);
});

test("cancel from a third replica stops the export on the replica that runs it", async (ctx) => {
  const cs = clients(ctx);
  const job = await cs[0]!.createJob({ reportId: "cancel", queryId: "q", queryText: LONG_QUERY });
  await waitFor(async () => (await cs[0]!.getJob(job.id)).status === JobStatus.RUNNING);
  const runner = (await cs[0]!.getJob(job.id)).replica;
  const other = ctx.replicas.findIndex((r) => replicaName(r) !== runner);
  const watched = collect(cs[(other + 1) % 3]!.watchJob(job.id).states);
  const cancelled = await cs[other]!.cancelJob(job.id);
  assert.is(cancelled.status, JobStatus.CANCELLED);
  assert.match(cancelled.error, /CancelJob/);
  assert.is((await watched).at(-1)!.status, JobStatus.CANCELLED);
  await waitFor(async () => stoppedHere(byName(ctx, runner), job.id), 10_000);
});

test("supersede across replicas: the earlier job ends CANCELLED naming the new one, whose export starts only after the earlier stopped", async (ctx) => {
  const cs = clients(ctx);
  const first = await cs[0]!.createJob({ reportId: "supersede", queryId: "q", queryText: LONG_QUERY });
  await waitFor(async () => (await cs[0]!.getJob(first.id)).status === JobStatus.RUNNING);
  const runner = byName(ctx, (await cs[0]!.getJob(first.id)).replica);
  const second = await cs[1]!.createJob({ reportId: "supersede", queryId: "q", queryText: "SELECT 'second' AS v" });
  const firstEnd = await cs[2]!.getJob(first.id);
  assert.is(firstEnd.status, JobStatus.CANCELLED);
  assert.match(firstEnd.error, new RegExp(`superseded by job ${second.id}`));
  const secondStates = await collect(cs[2]!.watchJob(second.id).states);
  const done = secondStates.at(-1)!;
  assert.is(done.status, JobStatus.DONE, done.error);
  const stopLine = runner.logs.find((l) => l.includes('"msg":"job stopped here') && l.includes(first.id));
  assert.ok(stopLine, "the earlier export stopped on its replica");
  const running = secondStates.find((s) => s.status === JobStatus.RUNNING) ?? (await cs[2]!.getJob(second.id));
  assert.ok(running, "the new job ran");
  const s3 = s3Client(ctx.s3.endpoint, KEY, SECRET);
  assert.is((await getObject(s3, done.resultUri)).toString(), '"v"\n"second"\n');
  assert.is((await getObject(s3, done.exportUri)).toString(), '"v"\n"second"\n');
});

test("SIGKILL the replica running an export: another takes it over after the lease, watchers on the survivors see DONE, one complete result", async (ctx) => {
  const cs = clients(ctx);
  const job = await cs[0]!.createJob({ reportId: "sigkill", queryId: "q", queryText: BIG_EXPORT });
  await waitFor(async () => (await cs[0]!.getJob(job.id)).status === JobStatus.RUNNING);
  const victimName = (await cs[0]!.getJob(job.id)).replica;
  const victim = byName(ctx, victimName);
  const survivors = ctx.replicas.filter((r) => r !== victim);
  const watchers = survivors.map((r) => collect(r.client().watchJob(job.id).states));
  victim.child.kill("SIGKILL");
  await victim.exited;
  const seen = await Promise.all(watchers);
  for (const states of seen) {
    const end = states.at(-1)!;
    assert.is(end.status, JobStatus.DONE, end.error);
    assert.is(end.attempt, 2);
    assert.is.not(end.replica, victimName);
  }
  const end = seen[0]!.at(-1)!;
  const s3 = s3Client(ctx.s3.endpoint, KEY, SECRET);
  const [bucket, ...key] = end.resultUri.slice("s3://".length).split("/");
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key.join("/") }))).ContentLength, bigExportSize());
  ctx.replicas[ctx.replicas.indexOf(victim)] = await startReplica(ctx);
  victim.cleanup();
});

test("SIGTERM a replica with running and queued jobs: it hands them over, none is lost", async (ctx) => {
  const cs = clients(ctx);
  const jobs: Job[] = [];
  for (let i = 0; i < 8; i++) jobs.push(await cs[i % 3]!.createJob({ reportId: "sigterm", queryId: `q${i}`, queryText: "SELECT number, toString(number) FROM numbers(8000000)" }));
  await waitFor(async () => (await Promise.all(jobs.map((j) => cs[0]!.getJob(j.id)))).some((j) => j.status === JobStatus.RUNNING));
  const runningOn = (await Promise.all(jobs.map((j) => cs[0]!.getJob(j.id)))).find((j) => j.status === JobStatus.RUNNING)!.replica;
  const leaving = byName(ctx, runningOn);
  const stayingClient = ctx.replicas.find((r) => r !== leaving)!.client();
  leaving.child.kill("SIGTERM");
  assert.is(await leaving.exited, 0);
  const ends = await Promise.all(jobs.map(async (j) => (await collect(stayingClient.watchJob(j.id).states)).at(-1)!));
  for (const end of ends) assert.is(end.status, JobStatus.DONE, `${end.id}: ${end.error}`);
  assert.ok(leaving.logs.some((l) => l.includes("handing running jobs over")) || ends.every((e) => e.attempt === 1), "it handed over what it was running");
  ctx.replicas[ctx.replicas.indexOf(leaving)] = await startReplica(ctx);
  leaving.cleanup();
});

test("PostgreSQL restarted while jobs run across replicas: every job ends DONE, no status lost", async (ctx) => {
  const cs = clients(ctx);
  const jobs: Job[] = [];
  for (let i = 0; i < 6; i++) jobs.push(await cs[i % 3]!.createJob({ reportId: "pgrestart", queryId: `q${i}`, queryText: "SELECT number FROM numbers(4000000)" }));
  const watched = jobs.map((j, i) => collect(cs[(i + 1) % 3]!.watchJob(j.id).states));
  await waitFor(async () => (await cs[0]!.getJob(jobs[0]!.id)).status !== JobStatus.PENDING);
  ctx.pg.restart();
  const seen = await Promise.all(watched);
  for (const states of seen) {
    const got = statuses(states);
    assert.is(states.at(-1)!.status, JobStatus.DONE, states.at(-1)!.error);
    assert.equal(got, FULL.slice(FULL.indexOf(got[0]!)), `${got}`);
  }
});

test.run();
