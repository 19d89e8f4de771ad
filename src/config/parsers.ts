// Parsers of one variable's value, as the table in ./variables.ts uses them. Each gets the trimmed,
// non-empty text and returns the value or a Problem: the problem and its fix, without the
// variable's name (the table adds it) and never echoing a secret. `fallback` is the variable's
// default text, for messages that suggest a value.

import * as fs from "node:fs";
import { isIPv6 } from "node:net";
import * as path from "node:path";
import { splitHostPort } from "../address.js";
import { parseBool } from "../clickhouse/dsn.js";
import { parseDuration } from "../durations.js";
import type { LogLevel, S3Location } from "./types.js";

export class Problem {
  /** Makes Problem nominal, so no parsed value is ever mistaken for one (protected: it is never read). */
  protected readonly isProblem = true;
  constructor(readonly message: string) {}
}

export const problem = (message: string): Problem => new Problem(message);

/** What a parser may look at besides the text. */
export interface ParseContext {
  /** Resolves relative paths (CHJOB_DATA_DIR, TLS files, a relative chdb:// path). */
  cwd: string;
  /** For the default CHJOB_REPLICA_ID. */
  hostname: string;
  pid: number;
}

export type Parser<T> = (text: string, ctx: ParseContext, fallback: string | undefined) => T | Problem;

// ---------------------------------------------------------------------------------------------
// Numbers and durations

/** A whole number from `min` to `max` (decimal digits only). */
export function integer(min: number, max?: { value: number; why: string }): Parser<number> {
  return (text, _ctx, fallback) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
      return problem(`${JSON.stringify(text)} is not a whole number ≥ ${min}; use e.g. ${fallback}`);
    }
    if (max !== undefined && n > max.value) return problem(`is above ${max.why}; use at most ${max.value}`);
    return n;
  };
}

/** Longest delay node's setTimeout honours (about 24.8 days); longer ones fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A Go-style duration (`90s`, `10m`, `1h30m`, `500ms`) in milliseconds. */
export function duration(opts: { allowZero: boolean; min?: { ms: number; text: string }; max?: number }): Parser<number> {
  return (text, _ctx, fallback) => {
    const ms = parseDuration(text);
    if (ms === undefined) return problem(`${JSON.stringify(text)} is not a duration; use e.g. ${fallback}, 30s, 1h30m or 500ms`);
    if (ms === 0 && !opts.allowZero) return problem(`must be longer than 0; use e.g. ${fallback}`);
    if (opts.min !== undefined && ms < opts.min.ms) return problem(`${JSON.stringify(text)} is shorter than ${opts.min.text}; use e.g. ${fallback}`);
    if (opts.max !== undefined && ms > opts.max) {
      return problem(`${JSON.stringify(text)} is too long (at most 596h, about 24.8 days); use a shorter duration`);
    }
    return ms;
  };
}

export const boolean: Parser<boolean> = (text) => {
  const value = parseBool(text);
  return value ?? problem(`${JSON.stringify(text)} is not true or false; use true or false`);
};

// ---------------------------------------------------------------------------------------------
// Words

/** Exactly `value` (Dekart's DEKART_DATASOURCE=CH, DEKART_STORAGE=S3). */
export function exactly<T extends string>(value: T, why: string): Parser<T> {
  return (text) => (text === value ? value : problem(`${JSON.stringify(text)} ${why}; set it to ${value} or leave it unset`));
}

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

export const logLevel: Parser<LogLevel> = (text) => {
  const lower = text.toLowerCase() as LogLevel;
  return LOG_LEVELS.includes(lower) ? lower : problem(`${JSON.stringify(text)} is not a log level; use debug, info, warn or error`);
};

export const region: Parser<string> = (text) =>
  /\s/.test(text) ? problem(`${JSON.stringify(text)} contains whitespace; use e.g. us-east-1`) : text;

/** Any text: the value as it is (trimmed). */
export const text: Parser<string> = (value) => value;

/** A bearer token: printable ASCII without spaces (a metadata value, `Bearer <token>` unsplit). Never echoed. */
export const token: Parser<string> = (value) =>
  /^[\x21-\x7e]+$/.test(value)
    ? value
    : problem("contains spaces or non-ASCII characters; use printable ASCII without spaces (e.g. the output of `openssl rand -hex 32`)");

// ---------------------------------------------------------------------------------------------
// Hosts and addresses

const HOSTNAME = /^[A-Za-z0-9._-]+$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

export function validHost(host: string): boolean {
  return host !== "" && (HOSTNAME.test(host) || IPV6.test(host));
}

function validPort(port: string, min: number): boolean {
  return /^\d{1,5}$/.test(port) && Number(port) >= min && Number(port) <= 65535;
}

/** A listen address `host:port` (port 0-65535; IPv6 in brackets). */
export const listenAddress: Parser<string> = (value, _ctx, fallback) => {
  const hp = splitHostPort(value);
  if (!hp || !validHost(hp.host) || hp.port === undefined || !validPort(hp.port, 0)) {
    const port = fallback?.split(":").pop();
    return problem(`${JSON.stringify(value)} is not host:port with a port from 0 to 65535; use e.g. ${fallback}, 0.0.0.0:${port} or [::]:${port}`);
  }
  return value;
};

/** An S3 endpoint as written: its scheme if it has one, and `host[:port]`. */
export interface EndpointText {
  scheme: "http" | "https" | undefined;
  hostPort: string;
}

/**
 * An S3 endpoint `http(s)://host[:port]` or a bare `host[:port]` (trailing slashes dropped). The
 * scheme of a bare one depends on AWS_INSECURE: see normaliseEndpoint in ./parse.ts.
 */
export const endpoint: Parser<EndpointText> = (value) => {
  // Never echo a value that might carry credentials (user:secret@host).
  const shown = value.includes("@") ? "the value" : JSON.stringify(value);
  const fix = "use http(s)://host[:port] or a bare host[:port], e.g. https://s3.amazonaws.com or localhost:4566";
  let scheme: "http" | "https" | undefined;
  let rest: string;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(value);
  if (m) {
    const given = m[1]!.toLowerCase();
    if (given !== "http" && given !== "https") return problem(`scheme "${given}://" is not http:// or https://; ${fix}`);
    scheme = given;
    rest = m[2]!;
  } else {
    scheme = undefined;
    rest = value;
  }
  rest = rest.replace(/\/+$/, "");
  if (rest.includes("@")) {
    return problem("must not contain credentials (user:password@); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead");
  }
  if (/[/?#]/.test(rest)) return problem(`${shown} has a path or query; ${fix} (the bucket comes from its own variable)`);
  const hp = splitHostPort(rest);
  if (!hp || !validHost(hp.host) || (hp.port !== undefined && !validPort(hp.port, 1))) {
    return problem(`${shown} is not a valid host[:port] (port 1-65535); ${fix}`);
  }
  return { scheme, hostPort: hp.port === undefined ? hp.host : `${hp.host}:${hp.port}` };
};

// ---------------------------------------------------------------------------------------------
// S3 locations

/** An S3 bucket name: 3-63 chars of a-z 0-9 . -, starting and ending with a letter or digit, no `..`. */
function validBucket(name: string): boolean {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) && !name.includes("..");
}

// Prefix segments: the characters AWS calls safe in keys, minus * ' ( ) (glob and quoting
// characters in ClickHouse's s3() path), plus `=` for hive-style `key=value` directories.
const PREFIX_SEGMENT = /^[A-Za-z0-9!_.=-]+$/;

/** Parses `bucket[/prefix]` (optional `s3://`, trailing slashes dropped); a string is the problem. */
export function parseS3Location(value: string): S3Location | string {
  const body = value.trim().replace(/^s3:\/\//i, "").replace(/\/+$/, "");
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

export const s3Location: Parser<S3Location> = (value) => {
  const loc = parseS3Location(value);
  return typeof loc === "string" ? problem(`${JSON.stringify(value)}: ${loc}; use bucket[/prefix], e.g. my-bucket/dekart/results`) : loc;
};

/** A bucket name; `s3://` and trailing slashes allowed. */
export const bucket: Parser<string> = (raw) => {
  const value = raw.replace(/^s3:\/\//i, "").replace(/\/+$/, "");
  if (value.includes("/")) return problem(`${JSON.stringify(raw)} is a path, not a bucket name; give only the bucket, e.g. my-bucket`);
  if (!validBucket(value)) {
    return problem(
      `${JSON.stringify(raw)} is not a valid S3 bucket name; use 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit`,
    );
  }
  return value;
};

// ---------------------------------------------------------------------------------------------
// Files

/** A directory path, resolved against cwd (not checked: it is created when needed). */
export const directory: Parser<string> = (value, ctx) => path.resolve(ctx.cwd, value);

/** A readable regular file, resolved against cwd. */
export const readableFile: Parser<string> = (value, ctx) => {
  const file = path.resolve(ctx.cwd, value);
  try {
    if (!fs.statSync(file).isFile()) return problem(`${JSON.stringify(value)} is not a file; give the path of a PEM file`);
    fs.accessSync(file, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "is not readable" : `cannot be read (${code ?? "error"})`;
    return problem(`${JSON.stringify(value)} ${why}; give the path of a readable PEM file`);
  }
  return file;
};

// ---------------------------------------------------------------------------------------------
// The job store

export const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;

/** CHJOB_DATABASE_URL, taken apart. `url` is the text as given (credentials and all). */
export interface PostgresUrl {
  url: string;
  host: string;
  port: number;
  database: string;
  user: string;
}

const PG_FORM = "use postgres://user:password@host[:port]/database[?sslmode=require]";
const PG_ENCODE = "percent-encode special characters in the user and password (@ as %40, / as %2F, # as %23, ? as %3F, : as %3A, % as %25)";

function decode(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/**
 * A `postgres://` or `postgresql://` URL with a user, a host and a database; `sslmode`, if given,
 * one of SSL_MODES. Messages never echo the URL, its user info or its query (a mistyped URL may
 * shift the password into any of them).
 */
export const postgresUrl: Parser<PostgresUrl> = (value) => {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value);
  if (!m) return problem(`is not a URL (no scheme://); ${PG_FORM}`);
  const scheme = m[1]!.toLowerCase();
  if (scheme !== "postgres" && scheme !== "postgresql") {
    return problem(`scheme "${scheme}://" is not postgres:// or postgresql://; ${PG_FORM}`);
  }
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return problem(`is not a valid URL; ${PG_FORM}, and ${PG_ENCODE}`);
  }
  if (u.hash !== "") return problem(`has a # (a fragment); ${PG_ENCODE}`);
  const host = u.hostname;
  if (host === "") return problem(`the host is missing; ${PG_FORM}`);
  if (!validHost(host)) return problem(`the host is not a valid host name or IP address; ${PG_FORM}, and ${PG_ENCODE}`);
  const port = u.port === "" ? 5432 : Number(u.port);
  if (port < 1) return problem(`the port is not from 1 to 65535; ${PG_FORM}`);
  const user = decode(u.username);
  const password = decode(u.password);
  if (user === undefined || password === undefined) return problem(`the user or password is not valid percent-encoding; ${PG_ENCODE}`);
  if (user === "") return problem(`the user is missing; ${PG_FORM}`);
  const rawDatabase = u.pathname.replace(/^\//, "");
  if (rawDatabase === "") return problem(`the database name is missing; ${PG_FORM}`);
  if (rawDatabase.includes("/")) return problem(`the path has more than one segment; put only the database after the host: ${PG_FORM}`);
  const database = decode(rawDatabase);
  if (database === undefined) return problem("the database name is not valid percent-encoding; encode % as %25");
  const sslmode = u.searchParams.get("sslmode");
  if (sslmode !== null && !(SSL_MODES as readonly string[]).includes(sslmode)) {
    return problem(`sslmode is not one of ${SSL_MODES.join(", ")}; e.g. ?sslmode=require`);
  }
  return { url: value, host: host.replace(/^\[(.*)\]$/, "$1"), port, database, user };
};

/** A PostgreSQL host name or IP address (IPv6 with or without brackets); returned without brackets. */
export const postgresHost: Parser<string> = (value) => {
  const bare = value.replace(/^\[(.*)\]$/, "$1");
  if (isIPv6(bare) || (bare === value && HOSTNAME.test(value))) return bare;
  return problem(`${JSON.stringify(value)} is not a host name or IP address; use e.g. localhost, db or 10.0.0.5`);
};

/** A TCP port, 1-65535. */
export const port: Parser<number> = (value, _ctx, fallback) =>
  validPort(value, 1) ? Number(value) : problem(`${JSON.stringify(value)} is not a port from 1 to 65535; use e.g. ${fallback}`);

/**
 * An unquoted PostgreSQL identifier (letters, digits, underscore, not starting with a digit, at
 * most 63 bytes), folded to lower case as PostgreSQL folds it; `pg_` names are reserved.
 */
export const schemaName: Parser<string> = (value, _ctx, fallback) => {
  const fix = `use letters, digits and underscores, not starting with a digit, e.g. ${fallback}`;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(value)) return problem(`${JSON.stringify(value)} is not an unquoted PostgreSQL identifier; ${fix}`);
  if (value.length > 63) return problem(`is ${value.length} characters long, PostgreSQL's limit is 63; use a shorter name`);
  const folded = value.toLowerCase();
  if (folded.startsWith("pg_")) return problem(`${JSON.stringify(value)} starts with pg_, which PostgreSQL reserves for system schemas; ${fix}`);
  return folded;
};

const REPLICA_ID = /^[A-Za-z0-9._-]{1,128}$/;

export const replicaId: Parser<string> = (value) =>
  REPLICA_ID.test(value)
    ? value
    : problem(`${JSON.stringify(value)} is not 1-128 characters of A-Z a-z 0-9 . _ -; use e.g. the host name, like chjob-1`);

/** The default replica id, `<host name>-<pid>`, made to fit REPLICA_ID whatever the host name. */
export function defaultReplicaId(ctx: ParseContext): string {
  const pid = `-${ctx.pid}`;
  const host = ctx.hostname.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 128 - pid.length) || "chjob";
  return `${host}${pid}`;
}
