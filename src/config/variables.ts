// The configuration variables, one entry each: the single list that parseConfig (./parse.ts)
// reads, the README's table is generated from (./docs.ts, `npm run docs:config`), and deployment
// files are checked against (CONFIG_VARIABLES). The README's "Configuration" section explains it.
//
// An entry parses one variable on its own. Rules that involve several variables (defaults that
// depend on embedded mode, both-or-neither pairs, where the job store is) are small functions in
// ./parse.ts.

import { parseDsnText, type DsnTarget } from "../clickhouse/dsn.js";
import { DEFAULT_COPY_PART_SIZE, DEFAULT_EMBEDDED_INFLIGHT_PARTS, S3_MAX_COPY_OBJECT_SIZE, S3_MAX_PART_SIZE, S3_MIN_PART_SIZE } from "../storage/parts.js";
import {
  DEFAULT_DEMO_ROWS,
  DEFAULT_EMBEDDED_S3_ADDRESS,
  DEFAULT_GRPC_ADDRESS,
  EMBEDDED_ACCESS_KEY_ID,
  EMBEDDED_OUTPUT_LOCATION,
  EMBEDDED_SECRET_ACCESS_KEY,
  EMBEDDED_STORAGE_BUCKET,
} from "./defaults.js";
import * as p from "./parsers.js";
import { Problem, type ParseContext, type Parser } from "./parsers.js";

/** Sections of the README's table, in this order. */
export const GROUPS = {
  source: "ClickHouse and S3 (Dekart's variables)",
  service: "The service",
  jobs: "Jobs",
  store: "Job store",
  tuning: "Tuning (rarely changed; tests use them too)",
} as const;

export type Group = keyof typeof GROUPS;

export interface Variable<T = unknown> {
  group: Group;
  /** One line of Markdown for the README's "meaning" column. */
  help: string;
  /** The value when unset (or empty), parsed like a set value; a function when computed at start. */
  default?: string | ((ctx: ParseContext) => string);
  /** The README's "default" column when the default is not a plain value (or there is none). */
  shownDefault?: string;
  /** Never printed: the whole value (true), or the password inside a URL. */
  secret?: true | "password";
  /** Absent: documented here but read elsewhere (UV_THREADPOOL_SIZE: by the launcher). */
  parse?: Parser<T>;
}

const dsn: Parser<DsnTarget> = (text) => {
  const r = parseDsnText(text);
  return "error" in r ? new Problem(r.error) : r.target;
};

/** A per-job limit: a whole number ≥ 1 (no default to suggest, so an example). */
const limit: Parser<number> = (text, ctx) => p.integer(1)(text, ctx, "1000000000");

/** SigV4's longest presigned URL: 7 days (X-Amz-Expires 604800). */
export const MAX_PRESIGN_TTL_MS = 7 * 24 * 3600 * 1000;

/** CHJOB_PRESIGN_TTL: whole seconds (X-Amz-Expires counts seconds), 1s to 7 days. */
const presignTtl: Parser<number> = (text, ctx, fallback) => {
  const ms = p.duration({ allowZero: false })(text, ctx, fallback ?? "15m");
  if (ms instanceof Problem) return ms;
  if (ms < 1000 || ms % 1000 !== 0) return new Problem(`${JSON.stringify(text)} is not a whole number of seconds (a presigned URL's lifetime counts seconds); use e.g. 15m, 1h or 90s`);
  if (ms > MAX_PRESIGN_TTL_MS) return new Problem(`${JSON.stringify(text)} is longer than 7 days (168h), the longest a SigV4 presigned URL is valid; use at most 168h`);
  return ms;
};

export const VARIABLES = {
  // --- ClickHouse and S3 -----------------------------------------------------------------------
  DEKART_DATASOURCE: {
    group: "source",
    help: "must be `CH` when set",
    default: "CH",
    parse: p.exactly("CH", "is not supported"),
  },
  DEKART_CLICKHOUSE_DATA_CONNECTION: {
    group: "source",
    help: "ClickHouse DSN ([forms below](#clickhouse-dsn-forms))",
    shownDefault: "unset: embedded chDB",
    secret: "password",
    parse: dsn,
  },
  DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION: {
    group: "source",
    help: "where ClickHouse writes each export: `bucket[/prefix]`, `s3://` optional",
    shownDefault: `embedded: \`${EMBEDDED_OUTPUT_LOCATION}\`; else required`,
    parse: p.s3Location,
  },
  AWS_ENDPOINT: {
    group: "source",
    help: "S3 endpoint `http(s)://host[:port]`; a bare `host[:port]` gets `http://` when `AWS_INSECURE=true`, else `https://`",
    shownDefault: "unset: embedded S3 server",
    parse: p.endpoint,
  },
  DEKART_CLICKHOUSE_S3_ENDPOINT: {
    group: "source",
    help: "the S3 endpoint as ClickHouse reaches it (e.g. `http://host.docker.internal:4566`), written like `AWS_ENDPOINT`",
    shownDefault: "`AWS_ENDPOINT`",
    parse: p.endpoint,
  },
  AWS_ACCESS_KEY_ID: {
    group: "source",
    help: "S3 access key id: ClickHouse writes with it, chjob copies with it",
    shownDefault: `required with \`AWS_ENDPOINT\`; embedded: \`${EMBEDDED_ACCESS_KEY_ID}\``,
    parse: p.text,
  },
  AWS_SECRET_ACCESS_KEY: {
    group: "source",
    help: "S3 secret access key, used the same way",
    shownDefault: `required with \`AWS_ENDPOINT\`; embedded: \`${EMBEDDED_SECRET_ACCESS_KEY}\``,
    secret: true,
    parse: p.text,
  },
  AWS_REGION: {
    group: "source",
    help: "signing region",
    default: "us-east-1",
    parse: p.region,
  },
  AWS_INSECURE: {
    group: "source",
    help: "`true`: plain-http endpoints and unverified TLS allowed",
    default: "false",
    parse: p.boolean,
  },
  DEKART_STORAGE: {
    group: "source",
    help: "`S3` (the only kind this service writes)",
    default: "S3",
    parse: p.exactly("S3", "is not supported (this service writes to S3 only)"),
  },
  DEKART_CLOUD_STORAGE_BUCKET: {
    group: "source",
    help: "bucket of the result objects",
    shownDefault: `embedded: \`${EMBEDDED_STORAGE_BUCKET}\`; else required`,
    parse: p.bucket,
  },

  // --- The service -----------------------------------------------------------------------------
  CHJOB_GRPC_ADDRESS: {
    group: "service",
    help: "listen address (`host:port`, port 0 picks one)",
    default: DEFAULT_GRPC_ADDRESS,
    parse: p.listenAddress,
  },
  CHJOB_AUTH_TOKEN: {
    group: "service",
    help: "when set, every JobService call needs metadata `authorization: Bearer <token>` (printable ASCII, no spaces)",
    secret: true,
    parse: p.token,
  },
  CHJOB_TLS_CERT: {
    group: "service",
    help: "PEM certificate file: serve gRPC over TLS (set with `CHJOB_TLS_KEY`)",
    parse: p.readableFile,
  },
  CHJOB_TLS_KEY: {
    group: "service",
    help: "PEM private key file of `CHJOB_TLS_CERT`",
    parse: p.readableFile,
  },
  CHJOB_DATA_DIR: {
    group: "service",
    help: "data of the embedded engine (`clickhouse/`), the embedded S3 server (`s3/`) and the embedded job store (`jobs/`)",
    default: "./.chjob",
    parse: p.directory,
  },
  CHJOB_EMBEDDED_S3_ADDRESS: {
    group: "service",
    help: "where the embedded S3 server listens",
    default: DEFAULT_EMBEDDED_S3_ADDRESS,
    parse: p.listenAddress,
  },
  CHJOB_LOG_LEVEL: {
    group: "service",
    help: "`debug`, `info`, `warn`, `error`",
    default: "info",
    parse: p.logLevel,
  },
  CHJOB_METRICS_ADDRESS: {
    group: "service",
    help: "where Prometheus metrics are served at `/metrics` (`host:port`, e.g. `0.0.0.0:9464`; port 0 picks one) ([Metrics](#metrics))",
    shownDefault: "unset: no metrics",
    // No default: the example in a problem's fix is this.
    parse: (text, ctx) => p.listenAddress(text, ctx, "127.0.0.1:9464"),
  },
  CHJOB_DEMO_ROWS: {
    group: "service",
    help: "rows of the demo table `uk_price_paid` made at an embedded start (0: none)",
    default: String(DEFAULT_DEMO_ROWS),
    parse: p.integer(0),
  },

  // --- Jobs ------------------------------------------------------------------------------------
  CHJOB_JOB_TIMEOUT: {
    group: "jobs",
    help: "per job, Go-style duration (`90s`, `10m`, `1h30m`)",
    default: "10m",
    parse: p.duration({ allowZero: false, max: p.MAX_TIMER_MS }),
  },
  CHJOB_MAX_CONCURRENT_JOBS: {
    group: "jobs",
    help: "export slots: jobs running at once",
    default: "8",
    parse: p.integer(1),
  },
  CHJOB_MAX_QUEUED_JOBS: {
    group: "jobs",
    help: "jobs waiting for a slot; beyond them CreateJob is refused",
    default: "1000",
    parse: p.integer(0),
  },
  CHJOB_JOB_RETENTION: {
    group: "jobs",
    help: "how long finished jobs stay readable",
    default: "24h",
    parse: p.duration({ allowZero: false }),
  },
  CHJOB_SHUTDOWN_GRACE: {
    group: "jobs",
    help: "drain time on SIGTERM",
    default: "30s",
    parse: p.duration({ allowZero: true, max: p.MAX_TIMER_MS }),
  },
  CHJOB_MAX_QUERY_BYTES: {
    group: "jobs",
    help: "longest accepted query text, in bytes",
    default: "1048576",
    parse: p.integer(1),
  },
  CHJOB_MAX_ROWS_TO_READ: {
    group: "jobs",
    help: "ClickHouse's `max_rows_to_read` for every job; a request may lower it (`max_rows_to_read`), never raise it",
    shownDefault: "unset: no limit",
    parse: limit,
  },
  CHJOB_MAX_BYTES_TO_READ: {
    group: "jobs",
    help: "ClickHouse's `max_bytes_to_read` for every job; a request may lower it, never raise it",
    shownDefault: "unset: no limit",
    parse: limit,
  },
  CHJOB_MAX_RESULT_BYTES: {
    group: "jobs",
    help: "largest result of every job, in bytes: chjob fails a job whose export writes more (ClickHouse does not apply its own `max_result_bytes` to an INSERT); a request may lower it, never raise it",
    shownDefault: "unset: no limit",
    parse: limit,
  },

  CHJOB_PRESIGN_TTL: {
    group: "jobs",
    help: "how long the `result_url` of a DONE job (a presigned GET of its result object) stays valid, from when the message carrying it is made: whole seconds, `1s` to `168h` (7 days, SigV4's limit)",
    shownDefault: "unset: no `result_url`",
    parse: presignTtl,
  },
  CHJOB_PUBLIC_S3_ENDPOINT: {
    group: "jobs",
    help: "the S3 endpoint as clients reach it, for `result_url` (when it differs from the service's), written like `AWS_ENDPOINT`; used only with `CHJOB_PRESIGN_TTL`",
    shownDefault: "`AWS_ENDPOINT`; embedded: the embedded S3 server",
    parse: p.endpoint,
  },

  // --- Job store -------------------------------------------------------------------------------
  CHJOB_DATABASE_URL: {
    group: "store",
    help: "the job store ([below](#job-store)): a `postgres://` or `postgresql://` URL with user, host and database (`sslmode` honoured)",
    shownDefault: "unset: Dekart's `DEKART_POSTGRES_*` if `DEKART_POSTGRES_HOST` is set, else embedded PGlite under `CHJOB_DATA_DIR/jobs`",
    secret: "password",
    parse: p.postgresUrl,
  },
  DEKART_POSTGRES_HOST: {
    group: "store",
    help: "Dekart's metadata database, the job store when `CHJOB_DATABASE_URL` is unset: its host",
    shownDefault: "unset",
    parse: p.postgresHost,
  },
  DEKART_POSTGRES_PORT: {
    group: "store",
    help: "its port",
    default: "5432",
    parse: p.port,
  },
  DEKART_POSTGRES_USER: {
    group: "store",
    help: "its user",
    shownDefault: "required with `DEKART_POSTGRES_HOST`",
    parse: p.text,
  },
  DEKART_POSTGRES_PASSWORD: {
    group: "store",
    help: "its password",
    shownDefault: "empty",
    secret: true,
    parse: p.text,
  },
  DEKART_POSTGRES_DB: {
    group: "store",
    help: "its database",
    shownDefault: "required with `DEKART_POSTGRES_HOST`",
    parse: p.text,
  },
  CHJOB_DATABASE_SCHEMA: {
    group: "store",
    help: "schema of chjob's tables: an unquoted PostgreSQL identifier (letters, digits, `_`; ≤ 63), folded to lower case",
    default: "chjob",
    parse: p.schemaName,
  },
  CHJOB_REPLICA_ID: {
    group: "store",
    help: "this replica's name in `Job.replica` and leases: 1–128 of `A-Z a-z 0-9 . _ -`",
    default: p.defaultReplicaId,
    shownDefault: "`<host name>-<pid>`",
    parse: p.replicaId,
  },
  CHJOB_LEASE: {
    group: "store",
    help: "how long a running job stays with a replica that stopped renewing it (at least `1s`)",
    default: "15s",
    parse: p.duration({ allowZero: false, min: { ms: 1000, text: "1s" }, max: p.MAX_TIMER_MS }),
  },
  CHJOB_MAX_ATTEMPTS: {
    group: "store",
    help: "runs of one job across restarts and take-overs",
    default: "3",
    parse: p.integer(1),
  },

  // --- Tuning ----------------------------------------------------------------------------------
  CHJOB_PROGRESS_INTERVAL: {
    group: "tuning",
    help: "how often running exports are sampled from `system.processes`",
    default: "500ms",
    parse: p.duration({ allowZero: false, max: p.MAX_TIMER_MS }),
  },
  CHJOB_HEALTH_INTERVAL: {
    group: "tuning",
    help: "how often ClickHouse and both buckets are re-checked for `grpc.health.v1`",
    default: "10s",
    parse: p.duration({ allowZero: false, max: p.MAX_TIMER_MS }),
  },
  CHJOB_MULTIPART_COPY_THRESHOLD: {
    group: "tuning",
    help: "results larger than this (bytes) are copied with multipart UploadPartCopy; at most 5 GiB, S3's CopyObject limit",
    default: String(S3_MAX_COPY_OBJECT_SIZE),
    shownDefault: `\`${S3_MAX_COPY_OBJECT_SIZE}\` (5 GiB)`,
    parse: p.integer(1, { value: S3_MAX_COPY_OBJECT_SIZE, why: `5 GiB (${S3_MAX_COPY_OBJECT_SIZE}), S3's limit for one CopyObject` }),
  },
  CHJOB_MULTIPART_COPY_PART_SIZE: {
    group: "tuning",
    help: "part size of that copy (5 MiB – 5 GiB), raised for a result that would take more than S3's 10,000 parts ([how](#what-a-job-does))",
    default: String(DEFAULT_COPY_PART_SIZE),
    shownDefault: `\`${DEFAULT_COPY_PART_SIZE}\` (512 MiB)`,
    parse: (text, ctx, fallback) => {
      const n = p.integer(1, { value: S3_MAX_PART_SIZE, why: `5 GiB (${S3_MAX_PART_SIZE}), S3's limit for one part` })(text, ctx, fallback);
      if (typeof n === "number" && n < S3_MIN_PART_SIZE) return new Problem(`is below 5 MiB (${S3_MIN_PART_SIZE}), S3's smallest part; use at least ${S3_MIN_PART_SIZE}, e.g. ${fallback}`);
      return n;
    },
  },
  CHJOB_EXPORT_INFLIGHT_PARTS: {
    group: "tuning",
    help: "parts of its S3 upload an export sends at once (ClickHouse's `s3_max_inflight_parts_for_one_file`): each is a buffer of 8 MiB or more, so fewer take less memory and can take longer; `20` is ClickHouse's default ([trade-off](#memory-and-speed-of-big-exports))",
    shownDefault: `embedded chDB: \`${DEFAULT_EMBEDDED_INFLIGHT_PARTS}\`; a ClickHouse server: unset (the server's own)`,
    // No default here: it depends on the engine (./parse.ts).
    parse: (text, ctx) => p.integer(1, { value: 1000, why: "1000" })(text, ctx, `${DEFAULT_EMBEDDED_INFLIGHT_PARTS} (less memory) or 20 (ClickHouse's default)`),
  },
  UV_THREADPOOL_SIZE: {
    group: "tuning",
    help: "node's thread pool; chDB holds one thread per running query, so the `chjob` command sets it unless you do",
    shownDefault: "`CHJOB_MAX_CONCURRENT_JOBS` + 9",
  },
} satisfies Record<string, Variable>;

export type VariableName = keyof typeof VARIABLES;

/** Every variable in table order, with its name. */
export const VARIABLE_LIST: ReadonlyArray<Variable & { name: VariableName }> = Object.entries(VARIABLES).map(([name, v]) => ({
  name: name as VariableName,
  ...(v as Variable),
}));

/** The variables a deployment sets (every group but tuning). Tests check deployment files against it. */
export const CONFIG_VARIABLES: readonly string[] = VARIABLE_LIST.filter((v) => v.group !== "tuning").map((v) => v.name);

/** Tuning variables, rarely changed (documented in the README's table too). */
export const EXTRA_VARIABLES: readonly string[] = VARIABLE_LIST.filter((v) => v.group === "tuning").map((v) => v.name);

// ---------------------------------------------------------------------------------------------
// Reading the table

type Table = typeof VARIABLES;
type ParsedType<V> = V extends { parse: Parser<infer T> } ? Exclude<T, Problem> : undefined;
type HasDefault<V> = V extends { default: unknown } ? true : false;

/** Each variable's value: its type when it has a default, else possibly undefined (unset or bad). */
export type Values = {
  [K in VariableName]: HasDefault<Table[K]> extends true ? ParsedType<Table[K]> : ParsedType<Table[K]> | undefined;
};

export interface Reading {
  values: Values;
  /** Set: given a non-empty value (valid or not). */
  isSet(name: VariableName): boolean;
  /** Set and accepted. */
  isValid(name: VariableName): boolean;
  problems: Array<{ name: VariableName; message: string }>;
}

/** The trimmed value, or undefined when unset or empty (an empty value counts as unset). */
export function textOf(env: Record<string, string | undefined>, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === "" ? undefined : v;
}

/**
 * Parses every variable of the table on its own. A bad value is a problem (and its value the
 * default, or undefined), so that every problem is found in one pass.
 */
export function readVariables(env: Record<string, string | undefined>, ctx: ParseContext): Reading {
  const values: Record<string, unknown> = {};
  const set = new Set<string>();
  const invalid = new Set<string>();
  const problems: Reading["problems"] = [];
  for (const v of VARIABLE_LIST) {
    if (v.parse === undefined) continue;
    const fallback = typeof v.default === "function" ? v.default(ctx) : v.default;
    const parseDefault = () => {
      if (fallback === undefined) return undefined;
      const d = v.parse!(fallback, ctx, fallback);
      if (d instanceof Problem) throw new Error(`${v.name}: the default ${JSON.stringify(fallback)} does not parse: ${d.message}`);
      return d;
    };
    const text = textOf(env, v.name);
    if (text === undefined) {
      values[v.name] = parseDefault();
      continue;
    }
    set.add(v.name);
    const parsed = v.parse(text, ctx, fallback);
    if (parsed instanceof Problem) {
      invalid.add(v.name);
      problems.push({ name: v.name, message: parsed.message });
      values[v.name] = parseDefault();
    } else {
      values[v.name] = parsed;
    }
  }
  return {
    values: values as Values,
    isSet: (name) => set.has(name),
    isValid: (name) => set.has(name) && !invalid.has(name),
    problems,
  };
}
