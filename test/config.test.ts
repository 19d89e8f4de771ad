import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadEnv, parseConfig, parseS3Location, secretsOf, type Config, type Env } from "../src/config/index.js";
import { createRedactor } from "../src/redact.js";
import { parseDuration } from "../src/durations.js";

const CWD = "/srv/app";

function ok(env: Env, cwd = CWD): Config {
  const r = parseConfig(env, { cwd });
  if ("errors" in r) throw new Error(`unexpected errors:\n${r.errors.join("\n")}`);
  return r.config;
}

function errors(env: Env, cwd = CWD): string[] {
  const r = parseConfig(env, { cwd });
  if ("config" in r) throw new Error("expected errors, got a config");
  return r.errors;
}

const REAL_S3: Env = {
  AWS_ENDPOINT: "https://s3.amazonaws.com",
  AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
  AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: "my-results",
  DEKART_CLOUD_STORAGE_BUCKET: "my-storage",
};

// ---------------------------------------------------------------------------------------------
// durations

test("parseDuration: Go-style durations", () => {
  const cases: Array<[string, number | undefined]> = [
    ["10m", 600_000],
    ["30s", 30_000],
    ["24h", 86_400_000],
    ["1h30m", 5_400_000],
    ["500ms", 500],
    ["1.5s", 1500],
    ["2h45m30.5s", 9_930_500],
    [".5s", 500],
    ["1000us", 1],
    ["0", 0],
    ["0s", 0],
    ["+5s", 5000],
    ["-1s", undefined],
    ["", undefined],
    ["   ", undefined],
    ["10", undefined],
    ["abc", undefined],
    ["10x", undefined],
    ["1h 30m", undefined],
    ["1.s.", undefined],
    ["s", undefined],
  ];
  for (const [text, want] of cases) assert.is(parseDuration(text), want, text);
});

// ---------------------------------------------------------------------------------------------
// defaults

test("embedded defaults", () => {
  const c = ok({});
  assert.equal(c, {
    clickhouse: { kind: "chdb", path: "/srv/app/.chjob/clickhouse" },
    s3: {
      endpoint: undefined,
      clickhouseEndpoint: undefined,
      accessKeyId: "chjob",
      secretAccessKey: "chjob-local-secret",
      defaultCredentials: true,
      region: "us-east-1",
      insecure: false,
      output: { bucket: "dekart-dev-local", prefix: "files" },
      storageBucket: "dekart-dev-local",
      copy: { multipartThreshold: 5 * 1024 ** 3, partSize: 512 * 1024 ** 2 },
    },
    grpc: { address: "127.0.0.1:50051", authToken: undefined, tls: undefined },
    dataDir: "/srv/app/.chjob",
    embeddedS3Address: "127.0.0.1:4566",
    metrics: { address: undefined },
    jobs: { timeoutMs: 600_000, maxConcurrent: 8, maxQueued: 1000, retentionMs: 86_400_000, maxQueryBytes: 1_048_576, progressIntervalMs: 500, limits: { maxRowsToRead: undefined, maxBytesToRead: undefined, maxResultBytes: undefined }, exportInflightParts: 2 },
    presign: undefined,
    shutdownGraceMs: 30_000,
    healthIntervalMs: 10_000,
    logLevel: "info",
    demoRows: 1_000_000,
    store: { kind: "pglite", directory: "/srv/app/.chjob/jobs", schema: "chjob" },
    replica: { id: `${os.hostname()}-${process.pid}`, leaseMs: 15_000, maxAttempts: 3 },
  } satisfies Config);
});

test("empty values count as unset", () => {
  const c = ok({ CHJOB_AUTH_TOKEN: "", CHJOB_LOG_LEVEL: " ", AWS_ENDPOINT: "", DEKART_CLICKHOUSE_DATA_CONNECTION: "" });
  assert.is(c.grpc.authToken, undefined);
  assert.is(c.logLevel, "info");
  assert.is(c.s3.endpoint, undefined);
  assert.is(c.clickhouse.kind, "chdb");
});

test("embedded mode accepts user-given credentials", () => {
  const c = ok({ AWS_ACCESS_KEY_ID: "me", AWS_SECRET_ACCESS_KEY: "mine" });
  assert.is(c.s3.accessKeyId, "me");
  assert.is(c.s3.secretAccessKey, "mine");
  assert.is(c.s3.defaultCredentials, false);
  assert.is(c.s3.endpoint, undefined);
});

test("embedded S3 with a ClickHouse-side endpoint and a real ClickHouse", () => {
  const c = ok({
    DEKART_CLICKHOUSE_S3_ENDPOINT: "http://host.docker.internal:4566/",
    DEKART_CLICKHOUSE_DATA_CONNECTION: "clickhouse://u:p@localhost:9000/db",
  });
  assert.is(c.s3.endpoint, undefined);
  assert.is(c.s3.clickhouseEndpoint, "http://host.docker.internal:4566");
  assert.is(c.clickhouse.kind, "http");
});

test("all values set", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chjob-config-"));
  fs.writeFileSync(path.join(dir, "cert.pem"), "cert");
  fs.writeFileSync(path.join(dir, "key.pem"), "key");
  try {
    const c = ok(
      {
        ...REAL_S3,
        DEKART_DATASOURCE: "CH",
        DEKART_STORAGE: "S3",
        DEKART_CLICKHOUSE_S3_ENDPOINT: "http://minio:9000",
        AWS_REGION: "eu-west-1",
        AWS_INSECURE: "1",
        CHJOB_GRPC_ADDRESS: "[::]:0",
        CHJOB_AUTH_TOKEN: "tok3n-abc",
        CHJOB_TLS_CERT: "cert.pem",
        CHJOB_TLS_KEY: path.join(dir, "key.pem"),
        CHJOB_DATA_DIR: "/var/chjob",
        CHJOB_EMBEDDED_S3_ADDRESS: "0.0.0.0:9999",
        CHJOB_METRICS_ADDRESS: "0.0.0.0:9464",
        CHJOB_JOB_TIMEOUT: "1h30m",
        CHJOB_JOB_RETENTION: "720h",
        CHJOB_SHUTDOWN_GRACE: "0",
        CHJOB_MAX_CONCURRENT_JOBS: "2",
        CHJOB_MAX_QUEUED_JOBS: "0",
        CHJOB_MAX_QUERY_BYTES: "4096",
        CHJOB_LOG_LEVEL: "DEBUG",
        CHJOB_DEMO_ROWS: "0",
        CHJOB_MAX_ROWS_TO_READ: "1000000",
        CHJOB_MAX_BYTES_TO_READ: "2000000",
        CHJOB_MAX_RESULT_BYTES: "3000000",
        CHJOB_PRESIGN_TTL: "15m",
        CHJOB_PUBLIC_S3_ENDPOINT: "files.example.com",
        CHJOB_EXPORT_INFLIGHT_PARTS: "8",
        DEKART_CLICKHOUSE_DATA_CONNECTION: "chdb://rel/ch",
      },
      dir,
    );
    assert.is(c.s3.endpoint, "https://s3.amazonaws.com");
    assert.is(c.s3.clickhouseEndpoint, "http://minio:9000");
    assert.is(c.s3.region, "eu-west-1");
    assert.is(c.s3.insecure, true);
    assert.is(c.s3.defaultCredentials, false);
    assert.equal(c.s3.output, { bucket: "my-results", prefix: "" });
    assert.is(c.s3.storageBucket, "my-storage");
    assert.equal(c.grpc, {
      address: "[::]:0",
      authToken: "tok3n-abc",
      tls: { certFile: path.join(dir, "cert.pem"), keyFile: path.join(dir, "key.pem") },
    });
    assert.is(c.dataDir, "/var/chjob");
    assert.equal(c.clickhouse, { kind: "chdb", path: path.join(dir, "rel/ch") });
    assert.is(c.embeddedS3Address, "0.0.0.0:9999");
    assert.equal(c.jobs, { timeoutMs: 5_400_000, maxConcurrent: 2, maxQueued: 0, retentionMs: 2_592_000_000, maxQueryBytes: 4096, progressIntervalMs: 500, limits: { maxRowsToRead: 1_000_000, maxBytesToRead: 2_000_000, maxResultBytes: 3_000_000 }, exportInflightParts: 8 });
    // AWS_INSECURE: a bare host gets http://.
    assert.equal(c.presign, { ttlMs: 900_000, publicEndpoint: "http://files.example.com" });
    assert.equal(c.metrics, { address: "0.0.0.0:9464" });
    assert.is(c.shutdownGraceMs, 0);
    assert.is(c.logLevel, "debug");
    assert.is(c.demoRows, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// the original's .env example

const ORIGINAL_DOTENV = `DEKART_STORAGE=S3
DEKART_CLOUD_STORAGE_BUCKET=dekart-dev-local
DEKART_DATASOURCE=CH
DEKART_CLICKHOUSE_DATA_CONNECTION="http://dekart:dekart@localhost:8123/dekart?secure=false&skip_verify=true"
DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION=dekart-dev-local/files

AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=xxx
AWS_SECRET_ACCESS_KEY=xxx
AWS_ENDPOINT=localhost:4566
AWS_INSECURE=true

`;

test("the original's .env example", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chjob-config-"));
  try {
    fs.writeFileSync(path.join(dir, ".env"), ORIGINAL_DOTENV);
    const c = ok(loadEnv(dir, {}), dir);
    assert.equal(c.clickhouse, {
      kind: "http",
      url: "http://localhost:8123",
      username: "dekart",
      password: "dekart",
      database: "dekart",
      connectTimeoutMs: undefined,
      skipVerify: true,
      mappedFrom: undefined,
    });
    assert.equal(c.s3, {
      endpoint: "http://localhost:4566",
      clickhouseEndpoint: "http://localhost:4566",
      accessKeyId: "xxx",
      secretAccessKey: "xxx",
      defaultCredentials: false,
      region: "us-east-1",
      insecure: true,
      output: { bucket: "dekart-dev-local", prefix: "files" },
      storageBucket: "dekart-dev-local",
      copy: { multipartThreshold: 5 * 1024 ** 3, partSize: 512 * 1024 ** 2 },
    });
    assert.is(c.dataDir, path.join(dir, ".chjob"));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// endpoints

test("AWS_ENDPOINT normalisation", () => {
  const cases: Array<[string, string | undefined, string]> = [
    ["localhost:4566", "true", "http://localhost:4566"],
    ["localhost:4566", undefined, "https://localhost:4566"],
    ["localhost:4566", "false", "https://localhost:4566"],
    ["s3.amazonaws.com", undefined, "https://s3.amazonaws.com"],
    ["https://s3.amazonaws.com/", undefined, "https://s3.amazonaws.com"],
    ["http://localhost:9000", undefined, "http://localhost:9000"], // explicit plain http accepted
    ["HTTP://minio:9000//", "true", "http://minio:9000"],
    ["https://storage.company.com", "true", "https://storage.company.com"],
    ["[::1]:4566", "1", "http://[::1]:4566"],
  ];
  for (const [endpoint, insecure, want] of cases) {
    const c = ok({ ...REAL_S3, AWS_ENDPOINT: endpoint, AWS_INSECURE: insecure });
    assert.is(c.s3.endpoint, want, endpoint);
    assert.is(c.s3.clickhouseEndpoint, want, `${endpoint} (ClickHouse side defaults to AWS_ENDPOINT)`);
  }
});

test("DEKART_CLICKHOUSE_S3_ENDPOINT normalised the same way", () => {
  const c = ok({ ...REAL_S3, AWS_ENDPOINT: "localhost:4566", AWS_INSECURE: "true", DEKART_CLICKHOUSE_S3_ENDPOINT: "host.docker.internal:4566" });
  assert.is(c.s3.endpoint, "http://localhost:4566");
  assert.is(c.s3.clickhouseEndpoint, "http://host.docker.internal:4566");
});

test("bad endpoints", () => {
  for (const endpoint of ["s3://bucket", "https://h/path", "https://h:99999", "https://", "http://a b", "https://h?x=1"]) {
    const errs = errors({ ...REAL_S3, AWS_ENDPOINT: endpoint });
    assert.is(errs.length, 1, `${endpoint}: ${errs.join(" | ")}`);
    assert.ok(errs[0]!.startsWith("AWS_ENDPOINT: "), errs[0]);
  }
  const withCreds = errors({ ...REAL_S3, AWS_ENDPOINT: "https://key:VerySecret1@s3.example.com" });
  assert.ok(withCreds[0]!.startsWith("AWS_ENDPOINT: "));
  assert.not.ok(withCreds.join("\n").includes("VerySecret1"));
  const ch = errors({ DEKART_CLICKHOUSE_S3_ENDPOINT: "ftp://x" });
  assert.equal(ch.length, 1);
  assert.ok(ch[0]!.startsWith("DEKART_CLICKHOUSE_S3_ENDPOINT: "));
});

// ---------------------------------------------------------------------------------------------
// output location and buckets

test("DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION forms", () => {
  const cases: Array<[string, string, string]> = [
    ["my-results", "my-results", ""],
    ["my-results/", "my-results", ""],
    ["s3://my-results", "my-results", ""],
    ["s3://my-results/", "my-results", ""],
    ["S3://my-results/dekart", "my-results", "dekart"],
    ["dekart-dev-local/files", "dekart-dev-local", "files"],
    ["dekart-dev-local/files/", "dekart-dev-local", "files"],
    ["bucket.with.dots/prefix/with/depth", "bucket.with.dots", "prefix/with/depth"],
    ["s3://abc/a/b/c/d/e/", "abc", "a/b/c/d/e"],
    ["abc/date=2024-01-01/x_y.z", "abc", "date=2024-01-01/x_y.z"],
  ];
  for (const [text, bucket, prefix] of cases) {
    assert.equal(parseS3Location(text), { bucket, prefix }, text);
    const c = ok({ DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: text });
    assert.equal(c.s3.output, { bucket, prefix }, text);
  }
});

test("bad output locations", () => {
  for (const text of ["ab", "ab/files", "My-Bucket/x", "-bucket", "bucket-", "a..b", "b_u_c_k_e_t", "/bucket/x", "bucket//x", "bucket/./x", "bucket/../x", "bucket/a b", "bucket/*", "s3://", `${"a".repeat(64)}/x`]) {
    const errs = errors({ DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: text });
    assert.is(errs.length, 1, `${text}: ${errs.join(" | ")}`);
    assert.ok(errs[0]!.startsWith("DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: "), errs[0]);
  }
  assert.equal(parseS3Location(`${"a".repeat(63)}/x`), { bucket: "a".repeat(63), prefix: "x" });
  assert.equal(parseS3Location("abc"), { bucket: "abc", prefix: "" });
});

test("DEKART_CLOUD_STORAGE_BUCKET", () => {
  assert.is(ok({ DEKART_CLOUD_STORAGE_BUCKET: "s3://results-bucket/" }).s3.storageBucket, "results-bucket");
  for (const text of ["ab", "Results", "bucket/prefix", "bad_name"]) {
    const errs = errors({ DEKART_CLOUD_STORAGE_BUCKET: text });
    assert.is(errs.length, 1, text);
    assert.ok(errs[0]!.startsWith("DEKART_CLOUD_STORAGE_BUCKET: "), errs[0]);
  }
});

test("a real AWS_ENDPOINT requires credentials, output location and bucket", () => {
  const errs = errors({ AWS_ENDPOINT: "https://s3.amazonaws.com" });
  const vars = errs.map((e) => e.split(":")[0]).sort();
  assert.equal(vars, [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION",
    "DEKART_CLOUD_STORAGE_BUCKET",
  ]);
});

test("only one credential set is an error, in either mode", () => {
  for (const base of [{}, { ...REAL_S3, AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined }]) {
    const a = errors({ ...base, AWS_ACCESS_KEY_ID: "only-the-id" });
    assert.is(a.length, 1);
    assert.ok(a[0]!.startsWith("AWS_SECRET_ACCESS_KEY: "), a[0]);
    const b = errors({ ...base, AWS_SECRET_ACCESS_KEY: "OnlyTheSecret42" });
    assert.is(b.length, 1);
    assert.ok(b[0]!.startsWith("AWS_ACCESS_KEY_ID: "), b[0]);
    assert.not.ok(b[0]!.includes("OnlyTheSecret42"));
  }
});

// ---------------------------------------------------------------------------------------------
// many errors at once

test("every problem listed at once, each naming its variable", () => {
  const env: Env = {
    DEKART_DATASOURCE: "PG",
    DEKART_STORAGE: "GCS",
    DEKART_CLICKHOUSE_DATA_CONNECTION: "clickhouse://u:HunterTwo22@host:port/db",
    DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: "ab//x",
    DEKART_CLOUD_STORAGE_BUCKET: "NO",
    AWS_ENDPOINT: "s3://nope",
    DEKART_CLICKHOUSE_S3_ENDPOINT: "https://h/x",
    AWS_SECRET_ACCESS_KEY: "SuperSecretKey999",
    AWS_INSECURE: "yes",
    AWS_REGION: "us east",
    CHJOB_GRPC_ADDRESS: "localhost",
    CHJOB_EMBEDDED_S3_ADDRESS: "127.0.0.1:65536",
    CHJOB_METRICS_ADDRESS: "9464",
    CHJOB_AUTH_TOKEN: "bad token with spaces",
    CHJOB_TLS_CERT: "/nonexistent/cert.pem",
    CHJOB_JOB_TIMEOUT: "0s",
    CHJOB_JOB_RETENTION: "forever",
    CHJOB_SHUTDOWN_GRACE: "-1s",
    CHJOB_MAX_CONCURRENT_JOBS: "8x",
    CHJOB_MAX_QUEUED_JOBS: "-1",
    CHJOB_MAX_QUERY_BYTES: "1e3",
    CHJOB_DEMO_ROWS: "1.5",
    CHJOB_LOG_LEVEL: "verbose",
  };
  const errs = errors(env);
  const expected = [
    "DEKART_DATASOURCE",
    "DEKART_STORAGE",
    "DEKART_CLICKHOUSE_DATA_CONNECTION",
    "DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION",
    "DEKART_CLOUD_STORAGE_BUCKET",
    "AWS_ENDPOINT",
    "DEKART_CLICKHOUSE_S3_ENDPOINT",
    "AWS_ACCESS_KEY_ID", // the secret is set without the id
    "AWS_INSECURE",
    "AWS_REGION",
    "CHJOB_GRPC_ADDRESS",
    "CHJOB_EMBEDDED_S3_ADDRESS",
    "CHJOB_METRICS_ADDRESS",
    "CHJOB_AUTH_TOKEN",
    "CHJOB_TLS_KEY", // cert without key
    "CHJOB_TLS_CERT", // the cert file does not exist
    "CHJOB_JOB_TIMEOUT",
    "CHJOB_JOB_RETENTION",
    "CHJOB_SHUTDOWN_GRACE",
    "CHJOB_MAX_CONCURRENT_JOBS",
    "CHJOB_MAX_QUEUED_JOBS",
    "CHJOB_MAX_QUERY_BYTES",
    "CHJOB_DEMO_ROWS",
    "CHJOB_LOG_LEVEL",
  ];
  assert.equal(errs.map((e) => e.slice(0, e.indexOf(":"))).sort(), [...expected].sort(), errs.join("\n"));
  for (const e of errs) {
    assert.match(e, /^[A-Z0-9_]+: \S/, e);
    assert.ok(e.includes(";"), `no fix in: ${e}`);
  }
  assert.ok(errs.includes('CHJOB_MAX_CONCURRENT_JOBS: "8x" is not a whole number ≥ 1; use e.g. 8'), errs.join("\n"));
  const all = errs.join("\n");
  for (const secret of ["HunterTwo22", "SuperSecretKey999", "bad token with spaces"]) {
    assert.not.ok(all.includes(secret), `secret leaked: ${secret}`);
  }
});

test("CHJOB_METRICS_ADDRESS: unset is no metrics; host:port is taken; anything else names an example", () => {
  assert.is(ok({}).metrics.address, undefined);
  assert.is(ok({ CHJOB_METRICS_ADDRESS: "0.0.0.0:9464" }).metrics.address, "0.0.0.0:9464");
  assert.is(ok({ CHJOB_METRICS_ADDRESS: "[::]:0" }).metrics.address, "[::]:0");
  assert.equal(errors({ CHJOB_METRICS_ADDRESS: ":9464x" }), [
    'CHJOB_METRICS_ADDRESS: ":9464x" is not host:port with a port from 0 to 65535; use e.g. 127.0.0.1:9464, 0.0.0.0:9464 or [::]:9464',
  ]);
});

test("integers: reject non-integers", () => {
  for (const v of ["8x", "1e3", "-1", "1.0", "0x10", " ", "9007199254740993"]) {
    const r = parseConfig({ CHJOB_MAX_CONCURRENT_JOBS: v }, { cwd: CWD });
    if (v.trim() === "") {
      assert.ok("config" in r);
      continue;
    }
    assert.ok("errors" in r, v);
    if ("errors" in r) assert.ok(r.errors[0]!.startsWith("CHJOB_MAX_CONCURRENT_JOBS: "), r.errors[0]);
  }
  assert.ok("errors" in parseConfig({ CHJOB_MAX_CONCURRENT_JOBS: "0" }, { cwd: CWD }));
  assert.ok("errors" in parseConfig({ CHJOB_MAX_QUERY_BYTES: "0" }, { cwd: CWD }));
  assert.is(ok({ CHJOB_MAX_QUEUED_JOBS: "0", CHJOB_DEMO_ROWS: "0", CHJOB_MAX_CONCURRENT_JOBS: "08" }).jobs.maxConcurrent, 8);
});

test("durations: timeouts > 0, grace may be 0, timers within setTimeout's range", () => {
  assert.ok("errors" in parseConfig({ CHJOB_JOB_RETENTION: "0" }, { cwd: CWD }));
  assert.ok("errors" in parseConfig({ CHJOB_JOB_TIMEOUT: "0" }, { cwd: CWD }));
  assert.ok("errors" in parseConfig({ CHJOB_JOB_TIMEOUT: "1000h" }, { cwd: CWD }));
  assert.is(ok({ CHJOB_SHUTDOWN_GRACE: "0s" }).shutdownGraceMs, 0);
  assert.is(ok({ CHJOB_JOB_TIMEOUT: "500ms" }).jobs.timeoutMs, 500);
});

test("addresses", () => {
  for (const a of ["0.0.0.0:50051", "[::]:50051", "localhost:0", "my-host:65535", "[::1]:1"]) {
    assert.is(ok({ CHJOB_GRPC_ADDRESS: a, CHJOB_EMBEDDED_S3_ADDRESS: a }).grpc.address, a);
  }
  for (const a of ["50051", ":50051", "host:", "host:65536", "::1:50051", "[::1]", "host:x", "a b:1"]) {
    const errs = errors({ CHJOB_GRPC_ADDRESS: a, CHJOB_EMBEDDED_S3_ADDRESS: a });
    assert.equal(errs.map((e) => e.split(":")[0]), ["CHJOB_GRPC_ADDRESS", "CHJOB_EMBEDDED_S3_ADDRESS"], a);
  }
});

test("TLS: both or neither, readable files", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chjob-config-"));
  try {
    fs.writeFileSync(path.join(dir, "cert.pem"), "cert");
    const onlyKey = errors({ CHJOB_TLS_KEY: "cert.pem" }, dir);
    assert.equal(onlyKey.map((e) => e.split(":")[0]), ["CHJOB_TLS_CERT"]);
    const missing = errors({ CHJOB_TLS_CERT: "cert.pem", CHJOB_TLS_KEY: "nope.pem" }, dir);
    assert.equal(missing.map((e) => e.split(":")[0]), ["CHJOB_TLS_KEY"]);
    assert.match(missing[0]!, /does not exist/);
    const isDir = errors({ CHJOB_TLS_CERT: "cert.pem", CHJOB_TLS_KEY: "." }, dir);
    assert.match(isDir[0]!, /^CHJOB_TLS_KEY: .*not a file/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("flags and enums", () => {
  assert.is(ok({ AWS_INSECURE: "TRUE" }).s3.insecure, true);
  assert.is(ok({ AWS_INSECURE: "0" }).s3.insecure, false);
  assert.is(ok({ DEKART_DATASOURCE: "CH", DEKART_STORAGE: "S3" }).logLevel, "info");
  for (const level of ["debug", "info", "warn", "error"] as const) assert.is(ok({ CHJOB_LOG_LEVEL: level }).logLevel, level);
});

test("secrets never appear in messages", () => {
  const env: Env = {
    AWS_SECRET_ACCESS_KEY: "Zq9SecretValueZq9",
    CHJOB_AUTH_TOKEN: "tok en Zq9TokenValue",
    DEKART_CLICKHOUSE_DATA_CONNECTION: "http://u:Zq9DsnPassword@:8123",
  };
  const all = errors(env).join("\n");
  assert.not.ok(all.includes("Zq9DsnPassword"), all);
  assert.not.ok(all.includes("Zq9TokenValue"), all);
  assert.not.ok(all.includes("tok en"), all);
  for (const e of errors({ AWS_SECRET_ACCESS_KEY: "Zq9SecretValueZq9" })) assert.not.ok(e.includes("Zq9SecretValueZq9"), e);
  for (const e of errors({ DEKART_CLICKHOUSE_DATA_CONNECTION: "clickhouse://u:Zq9DsnPassword@h:9000/db?dial_timeout=x" })) {
    assert.not.ok(e.includes("Zq9DsnPassword"), e);
  }
});

// ---------------------------------------------------------------------------------------------
// job store and replica

/** Errors of `env`, checked to name only `names` (in any order) and to hold none of `secrets`. */
function errorsOf(env: Env, names: string[], secrets: string[] = []): string[] {
  const errs = errors(env);
  assert.equal(errs.map((e) => e.slice(0, e.indexOf(":"))).sort(), [...names].sort(), errs.join("\n"));
  for (const e of errs) {
    assert.ok(e.includes(";"), `no fix in: ${e}`);
    for (const secret of secrets) assert.not.ok(e.includes(secret), `secret ${secret} in: ${e}`);
  }
  return errs;
}

test("job store: embedded PGlite under CHJOB_DATA_DIR/jobs by default", () => {
  assert.equal(ok({}).store, { kind: "pglite", directory: "/srv/app/.chjob/jobs", schema: "chjob" });
  assert.equal(ok({ CHJOB_DATA_DIR: "data", CHJOB_DATABASE_SCHEMA: "jobs_2" }).store, {
    kind: "pglite",
    directory: "/srv/app/data/jobs",
    schema: "jobs_2",
  });
  // Empty values count as unset.
  assert.is(ok({ CHJOB_DATABASE_URL: "", DEKART_POSTGRES_HOST: " ", DEKART_POSTGRES_PASSWORD: "" }).store.kind, "pglite");
});

test("CHJOB_DATABASE_URL: good URLs", () => {
  const cases: Array<[string, { host: string; port: number; database: string; user: string }]> = [
    ["postgres://chjob:Pw0rd@db.example.com:6543/jobs?sslmode=require", { host: "db.example.com", port: 6543, database: "jobs", user: "chjob" }],
    ["postgresql://chjob@localhost/jobs", { host: "localhost", port: 5432, database: "jobs", user: "chjob" }],
    ["POSTGRES://u:p@10.0.0.5:5432/d", { host: "10.0.0.5", port: 5432, database: "d", user: "u" }],
    ["postgres://u:p@[::1]:5433/d", { host: "::1", port: 5433, database: "d", user: "u" }],
    ["postgres://us%40er:p%2Fw%23d@h/my%20db?application_name=chjob", { host: "h", port: 5432, database: "my db", user: "us@er" }],
    ["postgres://u:p@h/d?sslmode=verify-full&connect_timeout=10", { host: "h", port: 5432, database: "d", user: "u" }],
  ];
  for (const [url, want] of cases) {
    const store = ok({ CHJOB_DATABASE_URL: url, CHJOB_DATABASE_SCHEMA: "Reports" }).store;
    assert.equal(store, { kind: "postgres", url, ...want, schema: "reports", source: "CHJOB_DATABASE_URL" }, url);
  }
  for (const mode of ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]) {
    assert.is(ok({ CHJOB_DATABASE_URL: `postgres://u@h/d?sslmode=${mode}` }).store.kind, "postgres", mode);
  }
});

test("CHJOB_DATABASE_URL: bad URLs name the variable and never the password", () => {
  const secret = "Zq9PgPassword";
  const bad = [
    "db.example.com:5432/jobs",
    `mysql://u:${secret}@h/d`,
    `http://u:${secret}@h/d`,
    `postgres://u:${secret}@/d`,
    `postgres:///d`,
    `postgres://u:${secret}@h`,
    `postgres://u:${secret}@h/`,
    `postgres://:${secret}@h/d`,
    `postgres://u:${secret}@h:0/d`,
    `postgres://u:${secret}@h:70000/d`,
    `postgres://u:${secret}@h/d?sslmode=required`,
    `postgres://u:${secret}@h/d?sslmode=`,
    `postgres://u:${secret}@h/d/x`,
    `postgres://u:${secret}@h/%zz`,
    `postgres://u:${secret}%zz@h/d`,
    `postgres://u:${secret}/x@h/d`, // an unencoded / in the password
    `postgres://u:${secret}#x@h/d`, // an unencoded # in the password
    `postgres://u:${secret}@h/d#x`,
    `postgres://u:${secret}@h_ost!/d`,
  ];
  for (const url of bad) {
    const errs = errorsOf({ CHJOB_DATABASE_URL: url }, ["CHJOB_DATABASE_URL"], [secret, "/x", "#x"]);
    assert.not.ok(errs[0]!.includes(url), errs[0]);
  }
  assert.match(errors({ CHJOB_DATABASE_URL: "postgres://u@h/d?sslmode=on" })[0]!, /sslmode is not one of disable, allow, prefer, require, verify-ca, verify-full/);
  assert.match(errors({ CHJOB_DATABASE_URL: "postgres://u@h" })[0]!, /the database name is missing/);
  assert.match(errors({ CHJOB_DATABASE_URL: "postgres://h/d" })[0]!, /the user is missing/);
  assert.match(errors({ CHJOB_DATABASE_URL: "postgres:///d" })[0]!, /the host is missing/);
});

test("CHJOB_DATABASE_URL wins over Dekart's variables", () => {
  const store = ok({
    CHJOB_DATABASE_URL: "postgres://chjob:a@pg/jobs",
    DEKART_POSTGRES_HOST: "dekart-db",
    DEKART_POSTGRES_USER: "dekart",
    DEKART_POSTGRES_DB: "dekart",
  }).store;
  assert.is(store.kind === "postgres" && store.source, "CHJOB_DATABASE_URL");
  assert.is(store.kind === "postgres" && store.host, "pg");
});

test("DEKART_POSTGRES_*: Dekart's database as the job store when no URL is given", () => {
  const store = ok({
    DEKART_POSTGRES_HOST: "db",
    DEKART_POSTGRES_USER: "dekart",
    DEKART_POSTGRES_PASSWORD: "dekart",
    DEKART_POSTGRES_DB: "dekart",
  }).store;
  assert.equal(store, {
    kind: "postgres",
    url: "postgres://dekart:dekart@db:5432/dekart?sslmode=disable",
    host: "db",
    port: 5432,
    database: "dekart",
    user: "dekart",
    schema: "chjob",
    source: "DEKART_POSTGRES_HOST",
  });
  // User and password percent-encoded; IPv6 host in brackets in the URL; no password, no colon.
  const odd = ok({
    DEKART_POSTGRES_HOST: "::1",
    DEKART_POSTGRES_PORT: "6432",
    DEKART_POSTGRES_USER: "de kart@x",
    DEKART_POSTGRES_PASSWORD: "p@ss/w:rd#%?",
    DEKART_POSTGRES_DB: "meta data",
    CHJOB_DATABASE_SCHEMA: "_chjob",
  }).store;
  assert.equal(odd, {
    kind: "postgres",
    url: "postgres://de%20kart%40x:p%40ss%2Fw%3Ard%23%25%3F@[::1]:6432/meta%20data?sslmode=disable",
    host: "::1",
    port: 6432,
    database: "meta data",
    user: "de kart@x",
    schema: "_chjob",
    source: "DEKART_POSTGRES_HOST",
  });
  if (odd.kind === "postgres") {
    const u = new URL(odd.url);
    assert.is(decodeURIComponent(u.password), "p@ss/w:rd#%?");
    assert.is(decodeURIComponent(u.username), "de kart@x");
  }
  const noPassword = ok({ DEKART_POSTGRES_HOST: "[fd00::5]", DEKART_POSTGRES_USER: "u", DEKART_POSTGRES_DB: "d" }).store;
  assert.is(noPassword.kind === "postgres" && noPassword.url, "postgres://u@[fd00::5]:5432/d?sslmode=disable");
});

test("DEKART_POSTGRES_*: problems name their variable, never the password", () => {
  const secret = "Zq9DekartPw";
  errorsOf({ DEKART_POSTGRES_HOST: "db", DEKART_POSTGRES_PASSWORD: secret }, ["DEKART_POSTGRES_USER", "DEKART_POSTGRES_DB"], [secret]);
  for (const portText of ["0", "65536", "54x", "-1", "5432.0"]) {
    errorsOf(
      { DEKART_POSTGRES_HOST: "db", DEKART_POSTGRES_PORT: portText, DEKART_POSTGRES_USER: "u", DEKART_POSTGRES_PASSWORD: secret, DEKART_POSTGRES_DB: "d" },
      ["DEKART_POSTGRES_PORT"],
      [secret],
    );
  }
  for (const host of ["db host", "db/x", "h:5432", "ab:5432", "[::1", "[db]"]) {
    errorsOf({ DEKART_POSTGRES_HOST: host, DEKART_POSTGRES_USER: "u", DEKART_POSTGRES_PASSWORD: secret, DEKART_POSTGRES_DB: "d" }, ["DEKART_POSTGRES_HOST"], [secret]);
  }
  // Dekart's other variables without its host: a mistake, not a silent embedded store.
  const stray = errorsOf({ DEKART_POSTGRES_USER: "u", DEKART_POSTGRES_PASSWORD: secret }, ["DEKART_POSTGRES_HOST"], [secret]);
  assert.match(stray[0]!, /DEKART_POSTGRES_USER, DEKART_POSTGRES_PASSWORD are set/);
});

test("CHJOB_DATABASE_SCHEMA: an unquoted PostgreSQL identifier", () => {
  for (const [text, want] of [
    ["chjob", "chjob"],
    ["_jobs", "_jobs"],
    ["Jobs_V2", "jobs_v2"],
    ["a1", "a1"],
    ["x".repeat(63), "x".repeat(63)],
  ] as const) {
    assert.is(ok({ CHJOB_DATABASE_SCHEMA: text }).store.schema, want, text);
  }
  for (const text of ["1jobs", "my-jobs", "my jobs", '"jobs"', "jobs.v2", "x".repeat(64), "pg_jobs", "PG_catalog", "jöbs", "$jobs"]) {
    errorsOf({ CHJOB_DATABASE_SCHEMA: text }, ["CHJOB_DATABASE_SCHEMA"]);
  }
});

test("CHJOB_REPLICA_ID: host name and pid by default, 1-128 of A-Z a-z 0-9 . _ -", () => {
  assert.is(ok({}).replica.id, `${os.hostname()}-${process.pid}`);
  const withHost = (hostname: string) => {
    const r = parseConfig({}, { cwd: CWD, hostname, pid: 4242 });
    if ("errors" in r) throw new Error(r.errors.join("\n"));
    return r.config.replica.id;
  };
  assert.is(withHost("web-1.example.com"), "web-1.example.com-4242");
  assert.is(withHost("host name+x"), "host-name-x-4242", "a default that would not be valid is made valid");
  assert.is(withHost("h".repeat(200)), `${"h".repeat(123)}-4242`);
  assert.is(withHost(""), "chjob-4242");
  for (const id of ["chjob-1", "a", "Replica_2.eu-west-1", "x".repeat(128)]) assert.is(ok({ CHJOB_REPLICA_ID: id }).replica.id, id);
  for (const id of ["chjob 1", "chjob/1", "x".repeat(129), "réplica", "a:b"]) errorsOf({ CHJOB_REPLICA_ID: id }, ["CHJOB_REPLICA_ID"]);
});

test("CHJOB_LEASE: a duration of at least 1s, default 15s", () => {
  assert.is(ok({}).replica.leaseMs, 15_000);
  for (const [text, ms] of [["1s", 1000], ["2m", 120_000], ["1m30s", 90_000], ["1500ms", 1500]] as const) {
    assert.is(ok({ CHJOB_LEASE: text }).replica.leaseMs, ms, text);
  }
  for (const text of ["999ms", "0", "0s", "15", "soon", "-15s", "1000h"]) {
    const [e] = errorsOf({ CHJOB_LEASE: text }, ["CHJOB_LEASE"]);
    if (text === "999ms") assert.is(e, 'CHJOB_LEASE: "999ms" is shorter than 1s; use e.g. 15s');
  }
});

test("CHJOB_MAX_ATTEMPTS: a whole number ≥ 1, default 3", () => {
  assert.is(ok({}).replica.maxAttempts, 3);
  assert.is(ok({ CHJOB_MAX_ATTEMPTS: "1" }).replica.maxAttempts, 1);
  assert.is(ok({ CHJOB_MAX_ATTEMPTS: "10" }).replica.maxAttempts, 10);
  for (const text of ["0", "-1", "1.5", "three", "1e2"]) {
    const [e] = errorsOf({ CHJOB_MAX_ATTEMPTS: text }, ["CHJOB_MAX_ATTEMPTS"]);
    assert.ok(e!.startsWith(`CHJOB_MAX_ATTEMPTS: ${JSON.stringify(text)} is not a whole number ≥ 1`), e);
  }
});

test("CHJOB_MAX_ROWS_TO_READ, CHJOB_MAX_BYTES_TO_READ, CHJOB_MAX_RESULT_BYTES: whole numbers ≥ 1, unset by default", () => {
  assert.equal(ok({}).jobs.limits, { maxRowsToRead: undefined, maxBytesToRead: undefined, maxResultBytes: undefined });
  for (const name of ["CHJOB_MAX_ROWS_TO_READ", "CHJOB_MAX_BYTES_TO_READ", "CHJOB_MAX_RESULT_BYTES"]) {
    for (const text of ["0", "1e6", "-5", "lots"]) {
      assert.equal(errorsOf({ [name]: text }, [name]), [`${name}: ${JSON.stringify(text)} is not a whole number ≥ 1; use e.g. 1000000000`], `${name}=${text}`);
    }
  }
});

test("CHJOB_EXPORT_INFLIGHT_PARTS: 2 on embedded chDB, unset (the server's own) with a ClickHouse server; 1–1000", () => {
  const server = { DEKART_CLICKHOUSE_DATA_CONNECTION: "clickhouse://u:p@localhost:9000/db" };
  assert.is(ok({}).jobs.exportInflightParts, 2);
  assert.is(ok({ DEKART_CLICKHOUSE_DATA_CONNECTION: "chdb://rel/ch" }).jobs.exportInflightParts, 2);
  assert.is(ok(server).jobs.exportInflightParts, undefined);
  assert.is(ok({ ...server, CHJOB_EXPORT_INFLIGHT_PARTS: "4" }).jobs.exportInflightParts, 4);
  assert.is(ok({ CHJOB_EXPORT_INFLIGHT_PARTS: "20" }).jobs.exportInflightParts, 20);
  assert.is(ok({ CHJOB_EXPORT_INFLIGHT_PARTS: "1" }).jobs.exportInflightParts, 1);
  for (const text of ["0", "-1", "2.5", "many"]) {
    assert.equal(errorsOf({ CHJOB_EXPORT_INFLIGHT_PARTS: text }, ["CHJOB_EXPORT_INFLIGHT_PARTS"]), [`CHJOB_EXPORT_INFLIGHT_PARTS: ${JSON.stringify(text)} is not a whole number ≥ 1; use e.g. 2 (less memory) or 20 (ClickHouse's default)`], text);
  }
  assert.equal(errorsOf({ CHJOB_EXPORT_INFLIGHT_PARTS: "1001" }, ["CHJOB_EXPORT_INFLIGHT_PARTS"]), ["CHJOB_EXPORT_INFLIGHT_PARTS: is above 1000; use at most 1000"]);
});

test("CHJOB_PRESIGN_TTL: unset means no result_url; whole seconds from 1s to 7 days", () => {
  assert.is(ok({}).presign, undefined);
  assert.is(ok({ CHJOB_PUBLIC_S3_ENDPOINT: "https://files.example.com" }).presign, undefined, "the public endpoint alone signs nothing");
  for (const [text, ms] of [["1s", 1000], ["15m", 900_000], ["1h30m", 5_400_000], ["168h", 604_800_000], ["2000ms", 2000]] as const) {
    assert.equal(ok({ CHJOB_PRESIGN_TTL: text }).presign, { ttlMs: ms, publicEndpoint: undefined }, text);
  }
  const cases: Array<[string, string]> = [
    ["soon", 'CHJOB_PRESIGN_TTL: "soon" is not a duration; use e.g. 15m, 30s, 1h30m or 500ms'],
    ["15", 'CHJOB_PRESIGN_TTL: "15" is not a duration; use e.g. 15m, 30s, 1h30m or 500ms'],
    ["0", "CHJOB_PRESIGN_TTL: must be longer than 0; use e.g. 15m"],
    ["500ms", 'CHJOB_PRESIGN_TTL: "500ms" is not a whole number of seconds (a presigned URL\'s lifetime counts seconds); use e.g. 15m, 1h or 90s'],
    ["1.5s", 'CHJOB_PRESIGN_TTL: "1.5s" is not a whole number of seconds (a presigned URL\'s lifetime counts seconds); use e.g. 15m, 1h or 90s'],
    ["169h", 'CHJOB_PRESIGN_TTL: "169h" is longer than 7 days (168h), the longest a SigV4 presigned URL is valid; use at most 168h'],
  ];
  for (const [text, message] of cases) assert.equal(errorsOf({ CHJOB_PRESIGN_TTL: text }, ["CHJOB_PRESIGN_TTL"]), [message], text);
});

test("CHJOB_PUBLIC_S3_ENDPOINT: normalised like AWS_ENDPOINT; bad values name the variable", () => {
  const at = (env: Env) => ok({ CHJOB_PRESIGN_TTL: "15m", ...env }).presign?.publicEndpoint;
  assert.is(at({ CHJOB_PUBLIC_S3_ENDPOINT: "https://files.example.com/" }), "https://files.example.com");
  assert.is(at({ CHJOB_PUBLIC_S3_ENDPOINT: "files.example.com:9000" }), "https://files.example.com:9000");
  assert.is(at({ CHJOB_PUBLIC_S3_ENDPOINT: "localhost:4566", AWS_INSECURE: "true" }), "http://localhost:4566");
  assert.is(at({ CHJOB_PUBLIC_S3_ENDPOINT: "http://localhost:4566" }), "http://localhost:4566");
  assert.is(at({}), undefined);
  for (const text of ["ftp://files.example.com", "https://files.example.com/bucket", "https://user:pw@files.example.com", "files example"]) {
    const [e] = errorsOf({ CHJOB_PRESIGN_TTL: "15m", CHJOB_PUBLIC_S3_ENDPOINT: text }, ["CHJOB_PUBLIC_S3_ENDPOINT"], ["pw"]);
    assert.ok(e!.startsWith("CHJOB_PUBLIC_S3_ENDPOINT: "), e);
  }
  // Both wrong: both listed at once.
  errorsOf({ CHJOB_PRESIGN_TTL: "8d", CHJOB_PUBLIC_S3_ENDPOINT: "ftp://x" }, ["CHJOB_PRESIGN_TTL", "CHJOB_PUBLIC_S3_ENDPOINT"]);
});

test("job store and replica: every problem at once", () => {
  errorsOf(
    {
      CHJOB_DATABASE_URL: "postgres://u:Zq9UrlPw@h/d?sslmode=maybe",
      DEKART_POSTGRES_PORT: "x",
      CHJOB_DATABASE_SCHEMA: "9",
      CHJOB_REPLICA_ID: "a b",
      CHJOB_LEASE: "1ms",
      CHJOB_MAX_ATTEMPTS: "0",
    },
    ["CHJOB_DATABASE_URL", "DEKART_POSTGRES_PORT", "CHJOB_DATABASE_SCHEMA", "CHJOB_REPLICA_ID", "CHJOB_LEASE", "CHJOB_MAX_ATTEMPTS"],
    ["Zq9UrlPw"],
  );
});

test("secretsOf: the job store's password reaches the redactor, from either source", () => {
  const fromUrl = ok({ CHJOB_DATABASE_URL: "postgres://u:Zq9%2FUrl%40Pw@h/d" });
  assert.ok(secretsOf(fromUrl).includes("Zq9/Url@Pw"));
  const redact = createRedactor(secretsOf(fromUrl));
  if (fromUrl.store.kind === "postgres") assert.not.ok(redact(`connecting to ${fromUrl.store.url}`).includes("Zq9"));
  assert.is(redact("password Zq9/Url@Pw rejected"), "password [HIDDEN] rejected");

  const fromDekart = ok({ DEKART_POSTGRES_HOST: "db", DEKART_POSTGRES_USER: "u", DEKART_POSTGRES_PASSWORD: "Zq9 Dekart/Pw", DEKART_POSTGRES_DB: "d" });
  const redactDekart = createRedactor(secretsOf(fromDekart));
  if (fromDekart.store.kind === "postgres") assert.not.ok(redactDekart(fromDekart.store.url).includes("Zq9"), redactDekart(fromDekart.store.url));
  assert.not.ok(redactDekart("auth failed for Zq9 Dekart/Pw").includes("Zq9"));

  const all = ok({ AWS_SECRET_ACCESS_KEY: "s3-secret", AWS_ACCESS_KEY_ID: "id", CHJOB_AUTH_TOKEN: "tok", DEKART_CLICKHOUSE_DATA_CONNECTION: "http://u:chpw@h:8123/db" });
  assert.equal(secretsOf(all), ["s3-secret", "tok", "chpw"]);
  assert.equal(secretsOf(ok({})), ["chjob-local-secret"]);
});

test("loadEnv: Dekart's .env gives the job store; an empty real CHJOB_DATABASE_URL does not hide it", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chjob-config-"));
  try {
    fs.writeFileSync(
      path.join(dir, ".env"),
      ["DEKART_POSTGRES_HOST=db", "DEKART_POSTGRES_USER=dekart", "DEKART_POSTGRES_PASSWORD=dekart", "DEKART_POSTGRES_DB=dekart", "CHJOB_DATABASE_URL=postgres://x@y/z", ""].join("\n"),
    );
    const store = ok(loadEnv(dir, { CHJOB_DATABASE_URL: "", DEKART_POSTGRES_PORT: "15432" }), dir).store;
    assert.is(store.kind === "postgres" && store.url, "postgres://dekart:dekart@db:15432/dekart?sslmode=disable");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// .env loading

test("loadEnv: .env read, real environment wins", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chjob-config-"));
  try {
    fs.writeFileSync(
      path.join(dir, ".env"),
      [
        "# a comment",
        "CHJOB_LOG_LEVEL=debug",
        "CHJOB_MAX_CONCURRENT_JOBS=3",
        'CHJOB_GRPC_ADDRESS="0.0.0.0:6000"',
        "export CHJOB_DEMO_ROWS=5",
        "CHJOB_AUTH_TOKEN=from-file",
        "",
      ].join("\n"),
    );
    const env = loadEnv(dir, { CHJOB_MAX_CONCURRENT_JOBS: "4", CHJOB_AUTH_TOKEN: "", PATH: "/bin", UNSET: undefined });
    assert.is(env.CHJOB_LOG_LEVEL, "debug");
    assert.is(env.CHJOB_MAX_CONCURRENT_JOBS, "4");
    assert.is(env.CHJOB_GRPC_ADDRESS, "0.0.0.0:6000");
    assert.is(env.CHJOB_AUTH_TOKEN, "");
    assert.is(env.PATH, "/bin");
    assert.is(env.CHJOB_DEMO_ROWS, "5");
    assert.not.ok("UNSET" in env && env.UNSET !== undefined);
    const c = ok(env, dir);
    assert.is(c.logLevel, "debug");
    assert.is(c.jobs.maxConcurrent, 4);
    assert.is(c.grpc.address, "0.0.0.0:6000");
    assert.is(c.grpc.authToken, undefined); // the real (empty) variable wins over the file
    assert.is(c.dataDir, path.join(dir, ".chjob"));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("loadEnv: no .env is fine", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chjob-config-"));
  try {
    assert.equal(loadEnv(dir, { A: "1" }), { A: "1" });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("loadEnv: an unreadable .env is an error naming it", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chjob-config-"));
  try {
    fs.mkdirSync(path.join(dir, ".env"));
    assert.throws(() => loadEnv(dir, {}), /\.env/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
