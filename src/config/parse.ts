// parseConfig: the environment (see ./env.ts) to the typed Config. Each variable is parsed by its
// entry in ./variables.ts; the rules between variables are the small functions below. Every
// problem is collected, each starting with its variable's name and never holding a secret's value
// (README, "Configuration"). Values are trimmed; an empty value counts as unset.

import * as os from "node:os";
import * as path from "node:path";
import type { DsnTarget } from "../clickhouse/dsn.js";
import { DEFAULT_EMBEDDED_INFLIGHT_PARTS } from "../storage/parts.js";
import { EMBEDDED_ACCESS_KEY_ID, EMBEDDED_OUTPUT_LOCATION, EMBEDDED_SECRET_ACCESS_KEY, EMBEDDED_STORAGE_BUCKET } from "./defaults.js";
import type { Env } from "./env.js";
import { parseS3Location, type EndpointText, type ParseContext } from "./parsers.js";
import type { ClickHouseTarget, Config, S3Location, S3Settings, StoreTarget } from "./types.js";
import { readVariables, VARIABLE_LIST, type Reading, type VariableName } from "./variables.js";

export type ConfigResult = { config: Config } | { errors: string[] };

export { EMBEDDED_ACCESS_KEY_ID, EMBEDDED_OUTPUT_LOCATION, EMBEDDED_SECRET_ACCESS_KEY, EMBEDDED_STORAGE_BUCKET };

/** Problems, each naming its variable; listed in the table's order of variables. */
class Problems {
  private readonly list: Array<{ name: VariableName; message: string }>;
  constructor(initial: Reading["problems"]) {
    this.list = [...initial];
  }
  add(name: VariableName, message: string): void {
    this.list.push({ name, message });
  }
  get count(): number {
    return this.list.length;
  }
  texts(): string[] {
    const order = new Map(VARIABLE_LIST.map((v, i) => [v.name, i]));
    return [...this.list].sort((a, b) => order.get(a.name)! - order.get(b.name)!).map((p) => `${p.name}: ${p.message}`);
  }
}

/**
 * Parses the whole configuration from `env` (usually loadEnv's result). `opts.cwd` (default
 * process.cwd()) resolves CHJOB_DATA_DIR, a relative chdb:// path and the TLS file paths;
 * `hostname` and `pid` (default this process's) make the default CHJOB_REPLICA_ID.
 */
export function parseConfig(env: Env, opts: { cwd?: string; hostname?: string; pid?: number } = {}): ConfigResult {
  const ctx: ParseContext = { cwd: opts.cwd ?? process.cwd(), hostname: opts.hostname ?? os.hostname(), pid: opts.pid ?? process.pid };
  const r = readVariables(env, ctx);
  const problems = new Problems(r.problems);
  const v = r.values;

  const dataDir = v.CHJOB_DATA_DIR;
  const clickhouse = clickhouseTarget(v.DEKART_CLICKHOUSE_DATA_CONNECTION, dataDir, ctx.cwd);
  const s3 = s3Settings(r, problems);
  const tls = tlsFiles(r, problems);
  const store = storeTarget(r, problems, dataDir);

  if (problems.count > 0 || s3 === undefined || store === undefined) return { errors: problems.texts() };
  return {
    config: {
      clickhouse,
      s3,
      grpc: { address: v.CHJOB_GRPC_ADDRESS, authToken: v.CHJOB_AUTH_TOKEN, tls },
      dataDir,
      embeddedS3Address: v.CHJOB_EMBEDDED_S3_ADDRESS,
      metrics: { address: v.CHJOB_METRICS_ADDRESS },
      jobs: {
        timeoutMs: v.CHJOB_JOB_TIMEOUT,
        maxConcurrent: v.CHJOB_MAX_CONCURRENT_JOBS,
        maxQueued: v.CHJOB_MAX_QUEUED_JOBS,
        retentionMs: v.CHJOB_JOB_RETENTION,
        maxQueryBytes: v.CHJOB_MAX_QUERY_BYTES,
        progressIntervalMs: v.CHJOB_PROGRESS_INTERVAL,
        limits: { maxRowsToRead: v.CHJOB_MAX_ROWS_TO_READ, maxBytesToRead: v.CHJOB_MAX_BYTES_TO_READ, maxResultBytes: v.CHJOB_MAX_RESULT_BYTES },
        // In embedded mode ClickHouse's upload buffers are the service's own memory.
        exportInflightParts: v.CHJOB_EXPORT_INFLIGHT_PARTS ?? (clickhouse.kind === "chdb" ? DEFAULT_EMBEDDED_INFLIGHT_PARTS : undefined),
      },
      presign:
        v.CHJOB_PRESIGN_TTL === undefined
          ? undefined
          : { ttlMs: v.CHJOB_PRESIGN_TTL, publicEndpoint: v.CHJOB_PUBLIC_S3_ENDPOINT && normaliseEndpoint(v.CHJOB_PUBLIC_S3_ENDPOINT, v.AWS_INSECURE) },
      shutdownGraceMs: v.CHJOB_SHUTDOWN_GRACE,
      healthIntervalMs: v.CHJOB_HEALTH_INTERVAL,
      logLevel: v.CHJOB_LOG_LEVEL,
      demoRows: v.CHJOB_DEMO_ROWS,
      store,
      replica: { id: v.CHJOB_REPLICA_ID, leaseMs: v.CHJOB_LEASE, maxAttempts: v.CHJOB_MAX_ATTEMPTS },
    },
  };
}

/** The DSN's target; unset (or `chdb://` alone) is chDB under `<CHJOB_DATA_DIR>/clickhouse`. */
function clickhouseTarget(dsn: DsnTarget | undefined, dataDir: string, cwd: string): ClickHouseTarget {
  if (dsn === undefined || (dsn.kind === "chdb" && dsn.path === undefined)) return { kind: "chdb", path: path.join(dataDir, "clickhouse") };
  return dsn.kind === "chdb" ? { kind: "chdb", path: path.resolve(cwd, dsn.path!) } : dsn;
}

/**
 * An endpoint as `http(s)://host[:port]`: a bare `host[:port]` gets `http://` when AWS_INSECURE
 * is true, else `https://`. An explicit `http://` is kept even when AWS_INSECURE is not true: the
 * user asked for plain HTTP (the original's examples use `http://localhost:4566` that way).
 */
export function normaliseEndpoint(endpoint: EndpointText, insecure: boolean): string {
  return `${endpoint.scheme ?? (insecure ? "http" : "https")}://${endpoint.hostPort}`;
}

/**
 * S3: with no AWS_ENDPOINT the embedded server, whose credentials, output location and bucket have
 * defaults; with one, all of those are required. The two credentials go together.
 */
function s3Settings(r: Reading, problems: Problems): S3Settings | undefined {
  const v = r.values;
  const insecure = v.AWS_INSECURE;
  const endpoint = v.AWS_ENDPOINT && normaliseEndpoint(v.AWS_ENDPOINT, insecure);
  const clickhouseEndpoint = (v.DEKART_CLICKHOUSE_S3_ENDPOINT && normaliseEndpoint(v.DEKART_CLICKHOUSE_S3_ENDPOINT, insecure)) ?? endpoint;
  const embedded = !r.isSet("AWS_ENDPOINT");
  const requiredBecause = "when AWS_ENDPOINT is set (a real S3 server)";

  const accessKeyId = v.AWS_ACCESS_KEY_ID;
  const secretAccessKey = v.AWS_SECRET_ACCESS_KEY;
  let defaultCredentials = false;
  if (accessKeyId === undefined && secretAccessKey === undefined) {
    if (embedded) {
      defaultCredentials = true;
    } else {
      problems.add("AWS_ACCESS_KEY_ID", `is required ${requiredBecause}; set the S3 access key id`);
      problems.add("AWS_SECRET_ACCESS_KEY", `is required ${requiredBecause}; set the S3 secret access key`);
    }
  } else if (accessKeyId === undefined) {
    problems.add("AWS_ACCESS_KEY_ID", "is unset while AWS_SECRET_ACCESS_KEY is set; set both or neither");
  } else if (secretAccessKey === undefined) {
    problems.add("AWS_SECRET_ACCESS_KEY", "is unset while AWS_ACCESS_KEY_ID is set; set both or neither");
  }

  let output: S3Location | undefined = v.DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION;
  if (!r.isSet("DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION")) {
    if (embedded) output = parseS3Location(EMBEDDED_OUTPUT_LOCATION) as S3Location;
    else problems.add("DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION", `is required ${requiredBecause}; set it to bucket[/prefix], e.g. my-bucket/dekart`);
  }
  let storageBucket = v.DEKART_CLOUD_STORAGE_BUCKET;
  if (!r.isSet("DEKART_CLOUD_STORAGE_BUCKET")) {
    if (embedded) storageBucket = EMBEDDED_STORAGE_BUCKET;
    else problems.add("DEKART_CLOUD_STORAGE_BUCKET", `is required ${requiredBecause}; set it to a bucket name, e.g. my-bucket`);
  }
  if (output === undefined || storageBucket === undefined) return undefined;

  return {
    endpoint,
    clickhouseEndpoint,
    accessKeyId: accessKeyId ?? EMBEDDED_ACCESS_KEY_ID,
    secretAccessKey: secretAccessKey ?? EMBEDDED_SECRET_ACCESS_KEY,
    defaultCredentials,
    region: v.AWS_REGION,
    insecure,
    output,
    storageBucket,
    copy: { multipartThreshold: v.CHJOB_MULTIPART_COPY_THRESHOLD, partSize: v.CHJOB_MULTIPART_COPY_PART_SIZE },
  };
}

/** CHJOB_TLS_CERT and CHJOB_TLS_KEY: both or neither. */
function tlsFiles(r: Reading, problems: Problems): { certFile: string; keyFile: string } | undefined {
  if (r.isSet("CHJOB_TLS_CERT") && !r.isSet("CHJOB_TLS_KEY")) {
    problems.add("CHJOB_TLS_KEY", "is unset while CHJOB_TLS_CERT is set; set both (PEM files) or neither");
  } else if (r.isSet("CHJOB_TLS_KEY") && !r.isSet("CHJOB_TLS_CERT")) {
    problems.add("CHJOB_TLS_CERT", "is unset while CHJOB_TLS_KEY is set; set both (PEM files) or neither");
  }
  const certFile = r.values.CHJOB_TLS_CERT;
  const keyFile = r.values.CHJOB_TLS_KEY;
  return certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined;
}

const DEKART_POSTGRES: readonly VariableName[] = [
  "DEKART_POSTGRES_PORT",
  "DEKART_POSTGRES_USER",
  "DEKART_POSTGRES_PASSWORD",
  "DEKART_POSTGRES_DB",
];

/**
 * The job store: CHJOB_DATABASE_URL; else Dekart's database when DEKART_POSTGRES_HOST is set (so
 * chjob can share the application's metadata database); else the embedded PGlite under
 * `<CHJOB_DATA_DIR>/jobs`. Dekart's other DEKART_POSTGRES_* set without its host is a mistake.
 */
function storeTarget(r: Reading, problems: Problems, dataDir: string): StoreTarget | undefined {
  const v = r.values;
  const schema = v.CHJOB_DATABASE_SCHEMA;
  if (r.isSet("CHJOB_DATABASE_URL")) {
    const u = v.CHJOB_DATABASE_URL;
    if (u === undefined) return undefined;
    return { kind: "postgres", url: u.url, host: u.host, port: u.port, database: u.database, user: u.user, schema, source: "CHJOB_DATABASE_URL" };
  }
  if (r.isSet("DEKART_POSTGRES_HOST")) {
    const why = "when DEKART_POSTGRES_HOST is set and CHJOB_DATABASE_URL is not (Dekart's database is the job store)";
    const user = v.DEKART_POSTGRES_USER;
    const database = v.DEKART_POSTGRES_DB;
    if (user === undefined) problems.add("DEKART_POSTGRES_USER", `is required ${why}; set the user of Dekart's database`);
    if (database === undefined) problems.add("DEKART_POSTGRES_DB", `is required ${why}; set the name of Dekart's database, e.g. dekart`);
    const host = v.DEKART_POSTGRES_HOST;
    if (host === undefined || user === undefined || database === undefined) return undefined;
    const port = v.DEKART_POSTGRES_PORT;
    const password = v.DEKART_POSTGRES_PASSWORD;
    const credentials = password === undefined ? encodeURIComponent(user) : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`;
    const hostInUrl = host.includes(":") ? `[${host}]` : host;
    // sslmode=disable: how Dekart itself connects with these variables.
    const url = `postgres://${credentials}@${hostInUrl}:${port}/${encodeURIComponent(database)}?sslmode=disable`;
    return { kind: "postgres", url, host, port, database, user, schema, source: "DEKART_POSTGRES_HOST" };
  }
  const stray = DEKART_POSTGRES.filter((name) => r.isSet(name));
  if (stray.length > 0) {
    const one = stray.length === 1;
    problems.add(
      "DEKART_POSTGRES_HOST",
      `is unset while ${stray.join(", ")} ${one ? "is" : "are"} set; set it to keep jobs in Dekart's database, or unset ${one ? "that" : "those"} to keep them in the embedded store (or set CHJOB_DATABASE_URL)`,
    );
  }
  return { kind: "pglite", directory: path.join(dataDir, "jobs"), schema };
}
