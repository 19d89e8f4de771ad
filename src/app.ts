// Wires the parts together from the configuration: job store, engines, object
// store, runner, gRPC server, health; and takes them down in order.
import { join } from "node:path";
import type { Config } from "./config/types.js";
import { openEngine } from "./clickhouse/open.js";
import type { ClickHouseEngine } from "./clickhouse/engine.js";
import { describeClickHouseError } from "./clickhouse/engine.js";
import { ensureDemoTable } from "./demo/ensure.js";
import { jobServiceHandlers } from "./grpc/handlers.js";
import { HealthState, Serving } from "./grpc/health.js";
import { startGrpcServer, type RunningGrpcServer } from "./grpc/server.js";
import { JobRunner } from "./jobs/runner.js";
import { JobWatchHub } from "./jobs/watch-hub.js";
import { lockDirectory } from "./store/dir-lock.js";
import { openStore } from "./store/open.js";
import type { JobStore } from "./store/job-store.js";
import { probeExportPath } from "./jobs/export-probe.js";
import type { Logger } from "./log.js";
import type { Redactor } from "./redact.js";
import { startEmbeddedS3, type EmbeddedS3 } from "./storage/embedded-s3.js";
import { S3ObjectStore } from "./storage/s3.js";
import type { ObjectStore } from "./storage/object-store.js";
import { startTelemetry } from "./telemetry/index.js";

export interface Service {
  grpcAddress: string;
  s3Endpoint: string;
  /** Drains and stops everything (docs/api.md, "Shutdown"). */
  stop(): Promise<void>;
}

const HEALTH_SERVICES = ["", "chjob.v1.JobService"];

export async function startService(config: Config, log: Logger, redact: Redactor): Promise<Service> {
  const closers: Array<() => Promise<void> | void> = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch((err) => log.warn({ err: String(err) }, "close failed"));
  };
  try {
    return await start(config, log, redact, closers, closeAll);
  } catch (err) {
    await closeAll();
    throw err;
  }
}

async function start(
  config: Config,
  log: Logger,
  redact: Redactor,
  closers: Array<() => Promise<void> | void>,
  closeAll: () => Promise<void>,
): Promise<Service> {
  const { s3 } = config;
  // First of all: a second process on the same embedded store is refused before it touches anything.
  const storeLock = config.store.kind === "pglite" ? lockDirectory(config.store.directory, "CHJOB_DATA_DIR") : undefined;
  closers.push(() => storeLock?.release());
  let embeddedS3: EmbeddedS3 | undefined;
  let endpoint = s3.endpoint;
  if (endpoint === undefined) {
    const [host, port] = splitHostPort(config.embeddedS3Address);
    embeddedS3 = await startEmbeddedS3({
      host,
      port,
      directory: join(config.dataDir, "s3"),
      buckets: [...new Set([s3.output.bucket, s3.storageBucket])],
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    });
    closers.push(() => embeddedS3!.close());
    endpoint = embeddedS3.endpoint;
  }
  const clickhouseS3Endpoint = s3.clickhouseEndpoint ?? endpoint;

  if (config.clickhouse.kind === "http" && config.clickhouse.mappedFrom) {
    const { port, to } = config.clickhouse.mappedFrom;
    log.info({ from: port, to }, `DEKART_CLICKHOUSE_DATA_CONNECTION: native port ${port} mapped to HTTP port ${to} (chjob speaks ClickHouse's HTTP interface)`);
  }
  const engine = await openEngine(config.clickhouse, { maxConcurrent: config.jobs.maxConcurrent, jobTimeoutMs: config.jobs.timeoutMs });
  closers.push(() => engine.close());
  await engine.ping().catch((err) => {
    throw new Error(`DEKART_CLICKHOUSE_DATA_CONNECTION: ${engine.description} does not answer: ${redact(describeClickHouseError(err))}`);
  });

  const store = new S3ObjectStore({
    endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    insecure: s3.insecure,
    multipartThreshold: s3.copy.multipartThreshold,
    partSize: s3.copy.partSize,
  });
  closers.push(() => store.close());
  await checkBuckets(store, [s3.output.bucket, s3.storageBucket]).catch((err: Error) => {
    throw new Error(`AWS_ENDPOINT: ${endpoint}: ${redact(err.message)}`);
  });

  // After the quick checks of ClickHouse and S3, so that their failures are named at once;
  // beside the demo table, since PGlite's first open (initdb) takes seconds too.
  const storeOpening = openStore(config.store, {
    lock: storeLock,
    onRetry: (err, attempt) => log.warn({ err: redact(String(err)), attempt }, "the job store is unreachable; retrying a job's state write"),
  });
  closers.push(async () => (await storeOpening.catch(() => undefined))?.close());
  if (config.clickhouse.kind === "chdb" && config.demoRows > 0) await ensureDemoTable(engine, config.demoRows, log);

  const jobs = await storeOpening;
  // Jobs that were running when this replica (or, on PGlite, the one process that can
  // open its directory) stopped are orphans: the runner takes them over at once.
  const orphans = await jobs.expireLeases(config.store.kind === "pglite" ? undefined : config.replica.id);
  if (orphans > 0) log.info({ jobs: orphans }, "jobs left running by an earlier run of this replica will run again");
  const watchers = new JobWatchHub(jobs);
  closers.push(() => watchers.close());
  // Metrics (CHJOB_METRICS_ADDRESS) and traces (OTEL_*): gRPC interceptors and the runner's hooks.
  const telemetry = await startTelemetry({
    metricsAddress: config.metrics.address,
    env: process.env,
    store: jobs,
    runningJobs: () => runner.activeCount, // read at scrapes, once the runner exists
    replicaId: config.replica.id,
    log,
  });
  closers.push(() => telemetry.close());
  const runner = new JobRunner({
    engine,
    objects: store,
    store: jobs,
    log,
    redact,
    settings: {
      clickhouseS3Endpoint,
      output: s3.output,
      storageBucket: s3.storageBucket,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      timeoutMs: config.jobs.timeoutMs,
      maxConcurrent: config.jobs.maxConcurrent,
      maxQueued: config.jobs.maxQueued,
      maxQueryBytes: config.jobs.maxQueryBytes,
      sampleIntervalMs: config.jobs.progressIntervalMs,
      killWaitMs: 30_000,
      replicaId: config.replica.id,
      leaseMs: config.replica.leaseMs,
      maxAttempts: config.replica.maxAttempts,
      pollIntervalMs: 1000,
      serverSideExports: config.clickhouse.kind === "http",
    },
    telemetry: telemetry.runner,
  });
  const stopRetention = sweepExpired(jobs, config.jobs.retentionMs, log);

  const health = new HealthState(HEALTH_SERVICES);
  closers.push(() => health.close());
  const grpc: RunningGrpcServer = await startGrpcServer({
    address: config.grpc.address,
    authToken: config.grpc.authToken,
    tls: config.grpc.tls,
    maxReceiveBytes: config.jobs.maxQueryBytes + 64 * 1024,
    jobService: jobServiceHandlers({ runner, store: jobs, watchers, pageTokenKey: await jobs.pageTokenKey(),
      log,
      maxQueryBytes: config.jobs.maxQueryBytes,
      limits: { ...config.jobs.limits, timeoutMs: config.jobs.timeoutMs },
    }),
    health,
    log,
    interceptors: telemetry.interceptors,
  });
  health.setAll(Serving.SERVING);
  // Before serving, so that the first jobs do not run beside it; bounded by its timeout.
  await probeExportPath({
    engine,
    store,
    log,
    redact,
    clickhouseS3Endpoint,
    output: s3.output,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    timeoutMs: Math.min(20_000, config.jobs.timeoutMs),
  });
  const stopProbe = probeHealth(engine, store, jobs, [s3.output.bucket, s3.storageBucket], health, log, config.healthIntervalMs);
  runner.start();

  log.info(
    {
      grpc: grpc.address,
      tls: Boolean(config.grpc.tls),
      auth: Boolean(config.grpc.authToken),
      clickhouse: engine.description,
      jobStore: jobs.description,
      replica: config.replica.id,
      s3: embeddedS3 ? `embedded S3 server at ${endpoint}` : endpoint,
      clickhouseS3Endpoint,
      output: `s3://${s3.output.bucket}/${s3.output.prefix}`,
      storageBucket: s3.storageBucket,
      metrics: telemetry.summary.metrics,
      traces: telemetry.summary.traces,
      ...(s3.defaultCredentials ? { s3Credentials: `embedded defaults (AWS_ACCESS_KEY_ID=${s3.accessKeyId})` } : {}),
    },
    "chjob serving",
  );

  let stopping: Promise<void> | undefined;
  return {
    grpcAddress: grpc.address,
    s3Endpoint: endpoint,
    stop: () =>
      (stopping ??= (async () => {
        log.info({ graceMs: config.shutdownGraceMs }, "shutting down");
        stopProbe();
        stopRetention();
        health.setAll(Serving.NOT_SERVING);
        // With other replicas on a shared store, what is still running goes to them instead of being cancelled.
        await runner.shutdown(config.shutdownGraceMs, { handOver: config.store.kind === "postgres" });
        // Watch streams have ended with their jobs' final states by now.
        await grpc.stop(5_000);
        await closeAll();
        log.info("stopped");
      })()),
  };
}

/** Deletes finished jobs past CHJOB_JOB_RETENTION now and then, in batches. */
function sweepExpired(jobs: JobStore, retentionMs: number, log: Logger): () => void {
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const n = await jobs.deleteExpired(retentionMs);
      if (n > 0) log.debug({ jobs: n }, "finished jobs past CHJOB_JOB_RETENTION deleted");
    } catch (err) {
      log.warn({ err: String(err) }, "could not delete expired jobs");
    } finally {
      busy = false;
    }
  }, Math.min(Math.max(retentionMs / 10, 250), 60_000));
  timer.unref();
  return () => clearInterval(timer);
}

async function checkBuckets(store: ObjectStore, buckets: string[]): Promise<void> {
  for (const bucket of new Set(buckets)) await store.checkBucket(bucket);
}

/** Re-checks ClickHouse, both buckets and the job store now and then; health follows. */
function probeHealth(engine: ClickHouseEngine, store: ObjectStore, jobs: JobStore, buckets: string[], health: HealthState, log: Logger, everyMs: number): () => void {
  let last = Serving.SERVING;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    let next = Serving.SERVING;
    let problem: string | undefined;
    try {
      await engine.ping();
      await checkBuckets(store, buckets);
      await jobs.ping();
    } catch (err) {
      next = Serving.NOT_SERVING;
      problem = err instanceof Error ? err.message : String(err);
    }
    busy = false;
    if (next !== last) {
      log[next === Serving.SERVING ? "info" : "warn"]({ problem }, `health: ${Serving[next]}`);
      last = next;
      health.setAll(next);
    }
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

function splitHostPort(address: string): [string, number] {
  const at = address.lastIndexOf(":");
  return [address.slice(0, at).replace(/^\[|\]$/g, ""), Number(address.slice(at + 1))];
}
