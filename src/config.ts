// The configuration (README, "Configuration"): environment variables, with a `.env` file in the working
// directory read first and the real environment winning. parseConfig collects every problem at
// once; each message starts with the variable's name and never contains a secret's value
// (AWS_SECRET_ACCESS_KEY, CHJOB_AUTH_TOKEN, the DSN's password).
//
// General rules: values are trimmed; an empty value counts as unset (so `VAR=` in a .env, or an
// empty real variable overriding it, means "use the default").

import * as fs from "node:fs";
import * as path from "node:path";
import { parseEnv } from "node:util";
import { parseBool, parseClickHouseDsn } from "./clickhouse/dsn.js";
import type { ClickHouseTarget, Config, LogLevel, S3Location } from "./config-types.js";
import { parseDuration } from "./durations.js";

export type Env = Record<string, string | undefined>;

export type ConfigResult = { config: Config } | { errors: string[] };

/** Documented credentials of the embedded S3 server when the user gives none. */
export const EMBEDDED_ACCESS_KEY_ID = "chjob";
export const EMBEDDED_SECRET_ACCESS_KEY = "chjob-local-secret";
export const EMBEDDED_OUTPUT_LOCATION = "dekart-dev-local/files";
export const EMBEDDED_STORAGE_BUCKET = "dekart-dev-local";

/** Longest delay node's setTimeout honours (about 24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

const MIB = 1024 ** 2;
const FIVE_GIB = 5 * 1024 ** 3;

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/**
 * Reads `<cwd>/.env` (if present) with node's util.parseEnv and overlays the real environment on
 * it: a variable set in `processEnv` (even to "") wins over the file. A missing .env is fine; an
 * unreadable one (permissions, a directory) throws an Error naming the file.
 */
export function loadEnv(cwd: string, processEnv: Env): Env {
  const file = path.join(cwd, ".env");
  let text: string | undefined;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`.env: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  const fromFile: Env = text === undefined ? {} : { ...parseEnv(text) };
  const merged: Env = { ...fromFile };
  for (const [k, v] of Object.entries(processEnv)) {
    if (v !== undefined) merged[k] = v;
  }
  return merged;
}

// ---------------------------------------------------------------------------------------------
// Value parsers shared by several variables. They return a value or push an error.

const HOSTNAME = /^[A-Za-z0-9._-]+$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

/** Splits `host:port` / `[v6]:port`; undefined when malformed. */
function splitHostPort(text: string): { host: string; port: string | undefined } | undefined {
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) return undefined;
    const after = text.slice(close + 1);
    if (after === "") return { host: text.slice(0, close + 1), port: undefined };
    if (!after.startsWith(":")) return undefined;
    return { host: text.slice(0, close + 1), port: after.slice(1) };
  }
  const parts = text.split(":");
  if (parts.length > 2) return undefined; // a bare IPv6 address needs brackets
  return { host: parts[0]!, port: parts[1] };
}

function validHost(host: string): boolean {
  return host !== "" && (HOSTNAME.test(host) || IPV6.test(host));
}

function validPort(port: string, min: number): boolean {
  return /^\d{1,5}$/.test(port) && Number(port) >= min && Number(port) <= 65535;
}

/** An S3 bucket name: 3-63 chars of a-z 0-9 . -, starting and ending with a letter or digit, no `..`. */
function validBucket(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes("..");
}

// Prefix segments: the characters AWS calls safe in keys, minus * ' ( ) (glob and quoting
// characters in ClickHouse's s3() path), plus `=` for hive-style `key=value` directories.
const PREFIX_SEGMENT = /^[A-Za-z0-9!_.=-]+$/;

class Collector {
  readonly errors: string[] = [];
  constructor(private readonly env: Env) {}

  /** The trimmed value, or undefined when unset or empty. */
  get(name: string): string | undefined {
    const v = this.env[name]?.trim();
    return v === undefined || v === "" ? undefined : v;
  }

  error(name: string, message: string): void {
    this.errors.push(`${name}: ${message}`);
  }

  integer(name: string, fallback: number, min: number): number {
    const text = this.get(name);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
      this.error(name, `${JSON.stringify(text)} is not a whole number ≥ ${min}; use e.g. ${fallback}`);
      return fallback;
    }
    return n;
  }

  duration(name: string, fallback: string, opts: { allowZero: boolean; max?: number }): number {
    const text = this.get(name) ?? fallback;
    const ms = parseDuration(text);
    if (ms === undefined) {
      this.error(name, `${JSON.stringify(text)} is not a duration; use e.g. ${fallback}, 30s, 1h30m or 500ms`);
      return parseDuration(fallback)!;
    }
    if (ms === 0 && !opts.allowZero) {
      this.error(name, `must be longer than 0; use e.g. ${fallback}`);
      return parseDuration(fallback)!;
    }
    if (opts.max !== undefined && ms > opts.max) {
      this.error(name, `${JSON.stringify(text)} is too long (at most 596h, about 24.8 days); use a shorter duration`);
      return parseDuration(fallback)!;
    }
    return ms;
  }

  boolean(name: string, fallback: boolean): boolean {
    const text = this.get(name);
    if (text === undefined) return fallback;
    const value = parseBool(text);
    if (value !== undefined) return value;
    this.error(name, `${JSON.stringify(text)} is not true or false; use true or false`);
    return fallback;
  }

  /** A listen address `host:port` (port 0-65535; IPv6 in brackets). */
  listenAddress(name: string, fallback: string): string {
    const text = this.get(name) ?? fallback;
    const hp = splitHostPort(text);
    if (!hp || !validHost(hp.host) || hp.port === undefined || !validPort(hp.port, 0)) {
      this.error(
        name,
        `${JSON.stringify(text)} is not host:port with a port from 0 to 65535; use e.g. ${fallback}, 0.0.0.0:${fallback.split(":").pop()} or [::]:${fallback.split(":").pop()}`,
      );
      return fallback;
    }
    return text;
  }

  /**
   * An S3 endpoint, normalised to `http(s)://host[:port]`. A bare `host[:port]` gets `http://`
   * when AWS_INSECURE=true, else `https://`. An explicit `http://` is accepted even when
   * AWS_INSECURE is not true: the scheme is explicit, so the user asked for plain HTTP (the
   * original's examples use `http://localhost:4566` and `http://localhost:9000` that way).
   */
  endpoint(name: string, insecure: boolean): string | undefined {
    const text = this.get(name);
    if (text === undefined) return undefined;
    // Never echo a value that might carry credentials (user:secret@host).
    const shown = text.includes("@") ? "the value" : JSON.stringify(text);
    const fix = "use http(s)://host[:port] or a bare host[:port], e.g. https://s3.amazonaws.com or localhost:4566";
    let scheme: string;
    let rest: string;
    const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(text);
    if (m) {
      scheme = m[1]!.toLowerCase();
      rest = m[2]!;
      if (scheme !== "http" && scheme !== "https") {
        this.error(name, `scheme "${scheme}://" is not http:// or https://; ${fix}`);
        return undefined;
      }
    } else {
      scheme = insecure ? "http" : "https";
      rest = text;
    }
    rest = rest.replace(/\/+$/, "");
    if (rest.includes("@")) {
      this.error(name, `must not contain credentials (user:password@); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead`);
      return undefined;
    }
    if (/[/?#]/.test(rest)) {
      this.error(name, `${shown} has a path or query; ${fix} (the bucket comes from its own variable)`);
      return undefined;
    }
    const hp = splitHostPort(rest);
    if (!hp || !validHost(hp.host) || (hp.port !== undefined && !validPort(hp.port, 1))) {
      this.error(name, `${shown} is not a valid host[:port] (port 1-65535); ${fix}`);
      return undefined;
    }
    return `${scheme}://${hp.port === undefined ? hp.host : `${hp.host}:${hp.port}`}`;
  }

  /** `bucket[/prefix]`, optional `s3://`, trailing slash dropped. */
  s3Location(name: string, fallback: string | undefined, requiredBecause: string | undefined): S3Location | undefined {
    const text = this.get(name);
    if (text === undefined) {
      if (fallback === undefined) {
        this.error(name, `is required ${requiredBecause}; set it to bucket[/prefix], e.g. my-bucket/dekart`);
        return undefined;
      }
      return parseS3Location(fallback) as S3Location;
    }
    const loc = parseS3Location(text);
    if (typeof loc === "string") {
      this.error(name, `${JSON.stringify(text)}: ${loc}; use bucket[/prefix], e.g. my-bucket/dekart/results`);
      return undefined;
    }
    return loc;
  }

  bucket(name: string, fallback: string | undefined, requiredBecause: string | undefined): string | undefined {
    const raw = this.get(name);
    if (raw === undefined) {
      if (fallback === undefined) this.error(name, `is required ${requiredBecause}; set it to a bucket name, e.g. my-bucket`);
      return fallback;
    }
    const text = raw.replace(/^s3:\/\//i, "").replace(/\/+$/, "");
    if (text.includes("/")) {
      this.error(name, `${JSON.stringify(raw)} is a path, not a bucket name; give only the bucket, e.g. my-bucket`);
      return undefined;
    }
    if (!validBucket(text)) {
      this.error(name, `${JSON.stringify(raw)} is not a valid S3 bucket name; use 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`);
      return undefined;
    }
    return text;
  }

  /** A readable regular file, resolved against cwd. */
  readableFile(name: string, text: string, cwd: string): string | undefined {
    const file = path.resolve(cwd, text);
    try {
      if (!fs.statSync(file).isFile()) {
        this.error(name, `${JSON.stringify(text)} is not a file; give the path of a PEM file`);
        return undefined;
      }
      fs.accessSync(file, fs.constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable" : `cannot be read (${code ?? "error"})`;
      this.error(name, `${JSON.stringify(text)} ${why}; give the path of a readable PEM file`);
      return undefined;
    }
    return file;
  }
}

/** Parses `bucket[/prefix]` (optional `s3://`, trailing slashes dropped); a string is the problem. */
export function parseS3Location(text: string): S3Location | string {
  const body = text.trim().replace(/^s3:\/\//i, "").replace(/\/+$/, "");
  if (body === "") return "the bucket is missing";
  const [bucket, ...segments] = body.split("/");
  if (!validBucket(bucket!)) {
    return `"${bucket}" is not a valid S3 bucket name (3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit)`;
  }
  for (const seg of segments) {
    if (seg === "") return "the prefix has an empty segment (//)";
    if (seg === "." || seg === "..") return `the prefix has a "${seg}" segment`;
    if (!PREFIX_SEGMENT.test(seg)) {
      return `the prefix segment "${seg}" has characters other than letters, digits and ! _ . = -`;
    }
  }
  return { bucket: bucket!, prefix: segments.join("/") };
}

/**
 * Parses the whole configuration from `env` (usually loadEnv's result). `opts.cwd` (default
 * process.cwd()) resolves CHJOB_DATA_DIR, a relative chdb:// path and the TLS file paths.
 */
export function parseConfig(env: Env, opts: { cwd?: string } = {}): ConfigResult {
  const cwd = opts.cwd ?? process.cwd();
  const c = new Collector(env);

  const datasource = c.get("DEKART_DATASOURCE");
  if (datasource !== undefined && datasource !== "CH") {
    c.error("DEKART_DATASOURCE", `${JSON.stringify(datasource)} is not supported; set it to CH or leave it unset`);
  }
  const storage = c.get("DEKART_STORAGE");
  if (storage !== undefined && storage !== "S3") {
    c.error("DEKART_STORAGE", `${JSON.stringify(storage)} is not supported (this service writes to S3 only); set it to S3 or leave it unset`);
  }

  const dataDir = path.resolve(cwd, c.get("CHJOB_DATA_DIR") ?? "./.chjob");

  // ClickHouse.
  let clickhouse: ClickHouseTarget = { kind: "chdb", path: path.join(dataDir, "clickhouse") };
  const dsn = parseClickHouseDsn(c.get("DEKART_CLICKHOUSE_DATA_CONNECTION"), dataDir);
  if ("error" in dsn) {
    c.errors.push(dsn.error);
  } else {
    clickhouse = dsn.target.kind === "chdb" ? { kind: "chdb", path: path.resolve(cwd, dsn.target.path) } : dsn.target;
  }

  // S3.
  const insecure = c.boolean("AWS_INSECURE", false);
  const endpoint = c.endpoint("AWS_ENDPOINT", insecure);
  const embedded = c.get("AWS_ENDPOINT") === undefined;
  const clickhouseEndpoint = c.endpoint("DEKART_CLICKHOUSE_S3_ENDPOINT", insecure) ?? endpoint;
  const requiredBecause = "when AWS_ENDPOINT is set (a real S3 server)";

  const accessKeyId = c.get("AWS_ACCESS_KEY_ID");
  const secretAccessKey = c.get("AWS_SECRET_ACCESS_KEY");
  let defaultCredentials = false;
  if (accessKeyId === undefined && secretAccessKey === undefined) {
    if (embedded) {
      defaultCredentials = true;
    } else {
      c.error("AWS_ACCESS_KEY_ID", `is required ${requiredBecause}; set the S3 access key id`);
      c.error("AWS_SECRET_ACCESS_KEY", `is required ${requiredBecause}; set the S3 secret access key`);
    }
  } else if (accessKeyId === undefined) {
    c.error("AWS_ACCESS_KEY_ID", "is unset while AWS_SECRET_ACCESS_KEY is set; set both or neither");
  } else if (secretAccessKey === undefined) {
    c.error("AWS_SECRET_ACCESS_KEY", "is unset while AWS_ACCESS_KEY_ID is set; set both or neither");
  }

  const region = c.get("AWS_REGION") ?? "us-east-1";
  if (/\s/.test(region)) c.error("AWS_REGION", `${JSON.stringify(region)} contains whitespace; use e.g. us-east-1`);

  const output = c.s3Location(
    "DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION",
    embedded ? EMBEDDED_OUTPUT_LOCATION : undefined,
    requiredBecause,
  );
  const storageBucket = c.bucket(
    "DEKART_CLOUD_STORAGE_BUCKET",
    embedded ? EMBEDDED_STORAGE_BUCKET : undefined,
    requiredBecause,
  );

  // gRPC.
  const grpcAddress = c.listenAddress("CHJOB_GRPC_ADDRESS", "127.0.0.1:50051");
  const authToken = c.get("CHJOB_AUTH_TOKEN");
  if (authToken !== undefined && !/^[\x21-\x7e]+$/.test(authToken)) {
    // Metadata values must be printable ASCII, and `Bearer <token>` must not split on a space.
    c.error("CHJOB_AUTH_TOKEN", "contains spaces or non-ASCII characters; use printable ASCII without spaces (e.g. the output of `openssl rand -hex 32`)");
  }
  const certText = c.get("CHJOB_TLS_CERT");
  const keyText = c.get("CHJOB_TLS_KEY");
  let tls: { certFile: string; keyFile: string } | undefined;
  if (certText !== undefined && keyText === undefined) {
    c.error("CHJOB_TLS_KEY", "is unset while CHJOB_TLS_CERT is set; set both (PEM files) or neither");
  } else if (keyText !== undefined && certText === undefined) {
    c.error("CHJOB_TLS_CERT", "is unset while CHJOB_TLS_KEY is set; set both (PEM files) or neither");
  }
  const certFile = certText === undefined ? undefined : c.readableFile("CHJOB_TLS_CERT", certText, cwd);
  const keyFile = keyText === undefined ? undefined : c.readableFile("CHJOB_TLS_KEY", keyText, cwd);
  if (certFile !== undefined && keyFile !== undefined) tls = { certFile, keyFile };

  const embeddedS3Address = c.listenAddress("CHJOB_EMBEDDED_S3_ADDRESS", "127.0.0.1:4566");

  // Jobs.
  const timeoutMs = c.duration("CHJOB_JOB_TIMEOUT", "10m", { allowZero: false, max: MAX_TIMER_MS });
  const retentionMs = c.duration("CHJOB_JOB_RETENTION", "24h", { allowZero: false });
  const shutdownGraceMs = c.duration("CHJOB_SHUTDOWN_GRACE", "30s", { allowZero: true, max: MAX_TIMER_MS });
  const maxConcurrent = c.integer("CHJOB_MAX_CONCURRENT_JOBS", 8, 1);
  const maxQueued = c.integer("CHJOB_MAX_QUEUED_JOBS", 1000, 0);
  const maxQueryBytes = c.integer("CHJOB_MAX_QUERY_BYTES", 1_048_576, 1);
  const demoRows = c.integer("CHJOB_DEMO_ROWS", 1_000_000, 0);
  const healthIntervalMs = c.duration("CHJOB_HEALTH_INTERVAL", "10s", { allowZero: false, max: MAX_TIMER_MS });
  const progressIntervalMs = c.duration("CHJOB_PROGRESS_INTERVAL", "500ms", { allowZero: false, max: MAX_TIMER_MS });

  // Server-side copy: one CopyObject up to the threshold, UploadPartCopy parts above it.
  const multipartThreshold = c.integer("CHJOB_MULTIPART_COPY_THRESHOLD", FIVE_GIB, 1);
  if (multipartThreshold > FIVE_GIB) c.error("CHJOB_MULTIPART_COPY_THRESHOLD", `is above 5 GiB (${FIVE_GIB}), S3's limit for one CopyObject`);
  const partSize = c.integer("CHJOB_MULTIPART_COPY_PART_SIZE", 512 * MIB, 5 * MIB);
  if (partSize > FIVE_GIB) c.error("CHJOB_MULTIPART_COPY_PART_SIZE", `is above 5 GiB (${FIVE_GIB}), S3's limit for one part`);

  const levelText = c.get("CHJOB_LOG_LEVEL");
  let logLevel: LogLevel = "info";
  if (levelText !== undefined) {
    const lower = levelText.toLowerCase() as LogLevel;
    if (LOG_LEVELS.includes(lower)) logLevel = lower;
    else c.error("CHJOB_LOG_LEVEL", `${JSON.stringify(levelText)} is not a log level; use debug, info, warn or error`);
  }

  if (c.errors.length > 0 || output === undefined || storageBucket === undefined) {
    return { errors: c.errors };
  }

  return {
    config: {
      clickhouse,
      s3: {
        endpoint,
        clickhouseEndpoint,
        accessKeyId: accessKeyId ?? EMBEDDED_ACCESS_KEY_ID,
        secretAccessKey: secretAccessKey ?? EMBEDDED_SECRET_ACCESS_KEY,
        defaultCredentials,
        region,
        insecure,
        output,
        storageBucket,
        copy: { multipartThreshold, partSize },
      },
      grpc: { address: grpcAddress, authToken, tls },
      dataDir,
      embeddedS3Address,
      jobs: { timeoutMs, maxConcurrent, maxQueued, retentionMs, maxQueryBytes, progressIntervalMs },
      shutdownGraceMs,
      healthIntervalMs,
      logLevel,
      demoRows,
    },
  };
}
