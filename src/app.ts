// Wires the parts together from the configuration, one named step after another:
// lock the data directory, start the storage, open ClickHouse and the object store,
// open the job store (beside the demo table), start the runner, start gRPC, probe the
// export path, start the health probe. Stopping takes them down in reverse order.
import { join } from "node:path";
import { listenParts } from "./address.js";
import type { ClickHouseEngine } from "./clickhouse/engine.js";
import { describeClickHouseError } from "./clickhouse/engine.js";
import { openEngine as openClickHouseEngine } from "./clickhouse/open.js";
import type { Config } from "./config/types.js";
import { ensureDemoTable } from "./demo/ensure.js";
import { jobService } from "./grpc/handlers.js";
import { HealthState, Serving } from "./grpc/health.js";
import type { ServerInterceptor } from "./grpc/interceptors.js";
import { startGrpcServer, type RunningGrpcServer } from "./grpc/server.js";
import { probeExportPath } from "./jobs/export-probe.js";
import { JobRunner } from "./jobs/runner.js";
import { JobWatchHub } from "./jobs/watch-hub.js";
import type { Logger } from "./log.js";
import type { Redactor } from "./redact.js";
import { startEmbeddedS3Thread } from "./storage/embedded-s3-thread.js";
import type { ObjectStore } from "./storage/object-store.js";
import { S3UrlSigner, type UrlSigner } from "./storage/presign.js";
import { S3ObjectStore } from "./storage/s3.js";
import { exportUploadSettings } from "./storage/parts.js";
import { lockDirectory, type DirectoryLock } from "./store/dir-lock.js";
import type { JobStore } from "./store/job-store.js";
import { openStore } from "./store/open.js";
import { startTelemetry, type Telemetry } from "./telemetry/index.js";

export interface Service {
  grpcAddress: string;
  s3Endpoint: string;
  /** Drains and stops everything (docs/api.md, "Shutdown"). */
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** gRPC server interceptors every call goes through (metrics, tracing): see src/grpc/interceptors.ts. */
  interceptors?: ServerInterceptor[];
}

const HEALTH_SERVICES = ["", "chjob.v1.JobService"];

/** What was started so far, closed in reverse order when the start fails or the service stops. */
class Closers {
  private readonly list: Array<() => Promise<void> | void> = [];
  constructor(private readonly log: Logger) {}
  add(close: () => Promise<void> | void): void {
    this.list.push(close);
  }
  async closeAll(): Promise<void> {
    for (const close of this.list.splice(0).reverse()) {
      await Promise.resolve()
        .then(close)
        .catch((err) => this.log.warn({ err: String(err) }, "close failed"));
    }
  }
}

interface Parts {
  config: Config;
  log: Logger;
  redact: Redactor;
  closers: Closers;
}

export async function startService(config: Config, log: Logger, redact: Redactor, opts: ServiceOptions = {}): Promise<Service> {
  const parts: Parts = { config, log, redact, closers: new Closers(log) };
  try {
    const storeLock = lockJobStore(parts);
    const storage = await startStorage(parts);
    const engine = await openEngine(parts);
    const objects = await openObjectStore(parts, storage.endpoint);
    const jobs = await openJobStore(parts, storeLock, engine);
    let running = () => 0;
    const telemetry = await startTelemetryStep(parts, jobs, () => running());
    const { runner, watchers, stopRetention } = startRunner(parts, { engine, objects, jobs, clickhouseS3Endpoint: storage.clickhouseEndpoint, telemetry });
    running = () => runner.activeCount;
    const urls = resultUrls(parts, storage);
    // Telemetry's interceptors first (outermost): they see every call and its final status.
    const interceptors = [...telemetry.interceptors, ...(opts.interceptors ?? [])];
    const { grpc, health } = await startGrpc(parts, { runner, jobs, watchers, urls: urls?.signer, interceptors });
    await probeExportPath({
      engine,
      store: objects,
      log,
      redact,
      clickhouseS3Endpoint: storage.clickhouseEndpoint,
      output: config.s3.output,
      accessKeyId: config.s3.accessKeyId,
      secretAccessKey: config.s3.secretAccessKey,
      timeoutMs: Math.min(20_000, config.jobs.timeoutMs),
    });
    const stopProbe = startHealthProbe(parts, { engine, objects, jobs, health });
    // After the export probe, so that the first jobs do not run beside it.
    runner.start();
    logServing(parts, { grpc, engine, jobs, storage, urls, telemetry });

    let stopping: Promise<void> | undefined;
    return {
      grpcAddress: grpc.address,
      s3Endpoint: storage.endpoint,
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
          await parts.closers.closeAll();
          log.info("stopped");
        })()),
    };
  } catch (err) {
    await parts.closers.closeAll();
    throw err;
  }
}

/** First of all: a second process on the same embedded job store is refused before it touches anything. */
function lockJobStore({ config, closers }: Parts): DirectoryLock | undefined {
  if (config.store.kind !== "pglite") return undefined;
  const lock = lockDirectory(config.store.directory, "CHJOB_DATA_DIR");
  closers.add(() => lock.release());
  return lock;
}

interface Storage {
  /** The S3 endpoint chjob uses. */
  endpoint: string;
  /** The S3 endpoint as ClickHouse reaches it. */
  clickhouseEndpoint: string;
  /** Whether `endpoint` is the embedded S3 server. */
  embedded: boolean;
}

/** The configured S3 endpoint, or the embedded S3 server started when there is none. */
async function startStorage({ config, log, closers }: Parts): Promise<Storage> {
  const { s3 } = config;
  let endpoint = s3.endpoint;
  if (endpoint === undefined) {
    const embedded = await startEmbeddedS3Thread(
      {
        ...listenParts(config.embeddedS3Address),
        directory: join(config.dataDir, "s3"),
        buckets: [...new Set([s3.output.bucket, s3.storageBucket])],
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
      },
      (err) => log.error({ err: err.message }, "the embedded S3 server stopped; exports and copies fail until chjob restarts"),
    );
    closers.add(() => embedded.close());
    endpoint = embedded.endpoint;
  }
  return { endpoint, clickhouseEndpoint: s3.clickhouseEndpoint ?? endpoint, embedded: s3.endpoint === undefined };
}

/** ClickHouse (a server or the embedded chDB), answering. */
async function openEngine({ config, log, redact, closers }: Parts): Promise<ClickHouseEngine> {
  if (config.clickhouse.kind === "http" && config.clickhouse.mappedFrom) {
    const { port, to } = config.clickhouse.mappedFrom;
    log.info({ from: port, to }, `DEKART_CLICKHOUSE_DATA_CONNECTION: native port ${port} mapped to HTTP port ${to} (chjob speaks ClickHouse's HTTP interface)`);
  }
  const engine = await openClickHouseEngine(config.clickhouse, { maxConcurrent: config.jobs.maxConcurrent, jobTimeoutMs: config.jobs.timeoutMs });
  closers.add(() => engine.close());
  await engine.ping().catch((err) => {
    throw new Error(`DEKART_CLICKHOUSE_DATA_CONNECTION: ${engine.description} does not answer: ${redact(describeClickHouseError(err))}`);
  });
  return engine;
}

/** The S3 client that copies results, with both buckets there. */
async function openObjectStore({ config, redact, closers }: Parts, endpoint: string): Promise<ObjectStore> {
  const { s3 } = config;
  const objects = new S3ObjectStore({
    endpoint,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    insecure: s3.insecure,
    multipartThreshold: s3.copy.multipartThreshold,
    partSize: s3.copy.partSize,
  });
  closers.add(() => objects.close());
  await checkBuckets(objects, buckets(config)).catch((err: Error) => {
    throw new Error(`AWS_ENDPOINT: ${endpoint}: ${redact(err.message)}`);
  });
  return objects;
}

/**
 * The job store, with the jobs an earlier run of this replica left running taken over. It opens
 * after the quick checks of ClickHouse and S3, so that their failures are named at once, and
 * beside the demo table, since PGlite's first open (initdb) takes seconds too.
 */
async function openJobStore({ config, log, redact, closers }: Parts, lock: DirectoryLock | undefined, engine: ClickHouseEngine): Promise<JobStore> {
  const opening = openStore(config.store, {
    lock,
    onRetry: (err, attempt) => log.warn({ err: redact(String(err)), attempt }, "the job store is unreachable; retrying a job's state write"),
  });
  closers.add(async () => (await opening.catch(() => undefined))?.close());
  if (config.clickhouse.kind === "chdb" && config.demoRows > 0) await ensureDemoTable(engine, config.demoRows, log);
  const jobs = await opening;
  // Jobs that were running when this replica (or, on PGlite, the one process that can
  // open its directory) stopped are orphans: the runner takes them over at once.
  const orphans = await jobs.expireLeases(config.store.kind === "pglite" ? undefined : config.replica.id);
  if (orphans > 0) log.info({ jobs: orphans }, "jobs left running by an earlier run of this replica will run again");
  return jobs;
}

/** The runner (not taking jobs until `start()`), the watch hub, and the sweep of expired jobs. */
function startRunner(
  { config, log, redact, closers }: Parts,
  deps: { engine: ClickHouseEngine; objects: ObjectStore; jobs: JobStore; clickhouseS3Endpoint: string; telemetry: Telemetry },
): { runner: JobRunner; watchers: JobWatchHub; stopRetention: () => void } {
  const { s3, jobs: limits, replica } = config;
  const watchers = new JobWatchHub(deps.jobs);
  closers.add(() => watchers.close());
  const runner = new JobRunner({
    engine: deps.engine,
    objects: deps.objects,
    store: deps.jobs,
    log,
    redact,
    settings: {
      clickhouseS3Endpoint: deps.clickhouseS3Endpoint,
      output: s3.output,
      storageBucket: s3.storageBucket,
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
      timeoutMs: limits.timeoutMs,
      maxConcurrent: limits.maxConcurrent,
      maxQueued: limits.maxQueued,
      maxQueryBytes: limits.maxQueryBytes,
      sampleIntervalMs: limits.progressIntervalMs,
      killWaitMs: 30_000,
      replicaId: replica.id,
      leaseMs: replica.leaseMs,
      maxAttempts: replica.maxAttempts,
      pollIntervalMs: 1000,
      serverSideExports: config.clickhouse.kind === "http",
      uploadSettings: exportUploadSettings(limits.exportInflightParts),
    },
    telemetry: deps.telemetry.runner,
  });
  return { runner, watchers, stopRetention: sweepExpired(deps.jobs, limits.retentionMs, log) };
}

/** Metrics (CHJOB_METRICS_ADDRESS) and traces (OTEL_*): gRPC interceptors and the runner's hooks. */
async function startTelemetryStep({ config, log, closers }: Parts, jobs: JobStore, runningJobs: () => number): Promise<Telemetry> {
  const telemetry = await startTelemetry({ metricsAddress: config.metrics.address, env: process.env, store: jobs, runningJobs, replicaId: config.replica.id, log });
  closers.add(() => telemetry.close());
  return telemetry;
}

/** result_url's signer (CHJOB_PRESIGN_TTL): for the endpoint clients reach, in embedded mode the embedded S3 server's. */
function resultUrls({ config }: Parts, storage: Storage): { signer: UrlSigner; endpoint: string } | undefined {
  if (!config.presign) return undefined;
  const { s3 } = config;
  const endpoint = config.presign.publicEndpoint ?? storage.endpoint;
  const signer = new S3UrlSigner({ endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, ttlSeconds: config.presign.ttlMs / 1000 });
  return { signer, endpoint };
}

/** JobService, Health and reflection on CHJOB_GRPC_ADDRESS; health SERVING once listening. */
async function startGrpc(
  { config, log, closers }: Parts,
  deps: { runner: JobRunner; jobs: JobStore; watchers: JobWatchHub; urls: UrlSigner | undefined; interceptors: ServerInterceptor[] | undefined },
): Promise<{ grpc: RunningGrpcServer; health: HealthState }> {
  const health = new HealthState(HEALTH_SERVICES);
  closers.add(() => health.close());
  const grpc = await startGrpcServer({
    address: config.grpc.address,
    authToken: config.grpc.authToken,
    tls: config.grpc.tls,
    maxQueryBytes: config.jobs.maxQueryBytes,
    jobService: jobService({
      runner: deps.runner,
      store: deps.jobs,
      watchers: deps.watchers,
      pageTokenKey: await deps.jobs.pageTokenKey(),
      maxQueryBytes: config.jobs.maxQueryBytes,
      limits: { ...config.jobs.limits, timeoutMs: config.jobs.timeoutMs },
      urls: deps.urls,
      log,
    }),
    health,
    log,
    interceptors: deps.interceptors,
  });
  health.setAll(Serving.SERVING);
  return { grpc, health };
}

/** Re-checks ClickHouse, both buckets and the job store every CHJOB_HEALTH_INTERVAL; health follows. Returns its stop. */
function startHealthProbe(
  { config, log }: Parts,
  deps: { engine: ClickHouseEngine; objects: ObjectStore; jobs: JobStore; health: HealthState },
): () => void {
  let last = Serving.SERVING;
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    let next = Serving.SERVING;
    let problem: string | undefined;
    try {
      await deps.engine.ping();
      await checkBuckets(deps.objects, buckets(config));
      await deps.jobs.ping();
    } catch (err) {
      next = Serving.NOT_SERVING;
      problem = err instanceof Error ? err.message : String(err);
    }
    busy = false;
    if (next !== last) {
      log[next === Serving.SERVING ? "info" : "warn"]({ problem }, `health: ${Serving[next]}`);
      last = next;
      deps.health.setAll(next);
    }
  }, config.healthIntervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** The "chjob serving" line: where everything is, no secret. */
function logServing(
  { config, log }: Parts,
  {
    grpc,
    engine,
    jobs,
    storage,
    urls,
    telemetry,
  }: { grpc: RunningGrpcServer; engine: ClickHouseEngine; jobs: JobStore; storage: Storage; urls: { endpoint: string } | undefined; telemetry: Telemetry },
): void {
  const { s3 } = config;
  log.info(
    {
      grpc: grpc.address,
      tls: Boolean(config.grpc.tls),
      auth: Boolean(config.grpc.authToken),
      clickhouse: engine.description,
      jobStore: jobs.description,
      replica: config.replica.id,
      s3: storage.embedded ? `embedded S3 server at ${storage.endpoint}` : storage.endpoint,
      clickhouseS3Endpoint: storage.clickhouseEndpoint,
      output: `s3://${s3.output.bucket}/${s3.output.prefix}`,
      storageBucket: s3.storageBucket,
      resultUrls: config.presign && urls ? `presigned for ${urls.endpoint}, valid ${config.presign.ttlMs / 1000} s` : "none (CHJOB_PRESIGN_TTL unset)",
      metrics: telemetry.summary.metrics,
      traces: telemetry.summary.traces,
      ...(s3.defaultCredentials ? { s3Credentials: `embedded defaults (AWS_ACCESS_KEY_ID=${s3.accessKeyId})` } : {}),
    },
    "chjob serving",
  );
}

/**
 * Deletes finished jobs past CHJOB_JOB_RETENTION now and then, in batches, and has the store
 * tidy up after its writes at most once a minute (the embedded store has no autovacuum).
 * Returns its stop.
 */
function sweepExpired(jobs: JobStore, retentionMs: number, log: Logger): () => void {
  let busy = false;
  let maintainedAt = 0;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const n = await jobs.deleteExpired(retentionMs);
      if (n > 0) log.debug({ jobs: n }, "finished jobs past CHJOB_JOB_RETENTION deleted");
      if (Date.now() - maintainedAt >= 60_000) {
        maintainedAt = Date.now();
        await jobs.maintain();
      }
    } catch (err) {
      log.warn({ err: String(err) }, "could not delete expired jobs or tidy the job store");
    } finally {
      busy = false;
    }
  }, Math.min(Math.max(retentionMs / 10, 250), 60_000));
  timer.unref();
  return () => clearInterval(timer);
}

/** The output bucket and the storage bucket (one, when they are the same). */
function buckets(config: Config): string[] {
  return [...new Set([config.s3.output.bucket, config.s3.storageBucket])];
}

async function checkBuckets(store: ObjectStore, names: string[]): Promise<void> {
  for (const bucket of names) await store.checkBucket(bucket);
}
