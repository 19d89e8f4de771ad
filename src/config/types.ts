// The typed configuration: parsed once from the environment by parseConfig (./parse.ts), one
// variable at a time by the table in ./variables.ts.

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Where ClickHouse is and how to reach it. */
export type ClickHouseTarget =
  | {
      kind: "http";
      /** `http(s)://host:port` with no credentials or path. */
      url: string;
      username: string;
      password: string;
      database: string;
      /** Connect timeout in ms (from `dial_timeout`), or undefined for the client default. */
      connectTimeoutMs: number | undefined;
      /** `skip_verify=true`: do not verify the server's TLS certificate. */
      skipVerify: boolean;
      /** Set when a native-protocol port was mapped to its HTTP twin, for the start-up log. */
      mappedFrom: { port: number; to: number } | undefined;
    }
  | {
      kind: "chdb";
      /** Directory of the embedded engine's data. */
      path: string;
    };

export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing slash; "" for none. */
  prefix: string;
}

export interface S3Settings {
  /** Endpoint the service itself uses, normalised `http(s)://host[:port]`; undefined: embedded S3 server. */
  endpoint: string | undefined;
  /** Endpoint as ClickHouse reaches it; undefined: same as `endpoint`. */
  clickhouseEndpoint: string | undefined;
  accessKeyId: string;
  secretAccessKey: string;
  /** True when the credentials are the documented embedded defaults (not user-given). */
  defaultCredentials: boolean;
  region: string;
  insecure: boolean;
  /** Export location: DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION. */
  output: S3Location;
  /** Bucket of the result objects: DEKART_CLOUD_STORAGE_BUCKET. */
  storageBucket: string;
  /** Server-side copy: CopyObject up to `multipartThreshold` bytes, UploadPartCopy parts of `partSize` above. */
  copy: { multipartThreshold: number; partSize: number };
}

/**
 * Where the job store lives: PostgreSQL (CHJOB_DATABASE_URL, or Dekart's DEKART_POSTGRES_* when no
 * URL is given) or the embedded PGlite under `<CHJOB_DATA_DIR>/jobs`.
 */
export type StoreTarget =
  | { kind: "pglite"; directory: string; schema: string }
  | {
      kind: "postgres";
      /**
       * A complete postgres:// URL, credentials and sslmode included: CHJOB_DATABASE_URL as given,
       * or built from DEKART_POSTGRES_* (user and password percent-encoded, `sslmode=disable` as
       * Dekart connects). It holds the password: never log it.
       */
      url: string;
      host: string;
      port: number;
      database: string;
      user: string;
      /** Schema of chjob's tables (CHJOB_DATABASE_SCHEMA), folded to lower case. */
      schema: string;
      source: "CHJOB_DATABASE_URL" | "DEKART_POSTGRES_HOST";
    };

export interface ServiceLimits {
  maxRowsToRead: number | undefined;
  maxBytesToRead: number | undefined;
  maxResultBytes: number | undefined;
}

export interface Config {
  clickhouse: ClickHouseTarget;
  s3: S3Settings;
  grpc: {
    address: string;
    authToken: string | undefined;
    tls: { certFile: string; keyFile: string } | undefined;
  };
  dataDir: string;
  embeddedS3Address: string;
  /** CHJOB_METRICS_ADDRESS: where /metrics is served; undefined: nowhere. */
  metrics: { address: string | undefined };
  jobs: {
    timeoutMs: number;
    maxConcurrent: number;
    maxQueued: number;
    retentionMs: number;
    maxQueryBytes: number;
    /** How often running exports are sampled for progress. */
    progressIntervalMs: number;
    /** Service-wide limits of every job (CHJOB_MAX_ROWS_TO_READ, …); a request may lower them. */
    limits: ServiceLimits;
    /**
     * CHJOB_EXPORT_INFLIGHT_PARTS: ClickHouse's s3_max_inflight_parts_for_one_file for exports;
     * by default 2 on embedded chDB, undefined (not sent: the server's own) with a ClickHouse server.
     */
    exportInflightParts: number | undefined;
  };
  /**
   * result_url (CHJOB_PRESIGN_TTL): presigned GETs of DONE jobs' result objects, valid `ttlMs`;
   * undefined: no URL.
   */
  presign: { ttlMs: number; /** CHJOB_PUBLIC_S3_ENDPOINT, normalised; undefined: the service's own S3 endpoint. */ publicEndpoint: string | undefined } | undefined;
  shutdownGraceMs: number;
  /** How often ClickHouse and the buckets are re-checked for the health service. */
  healthIntervalMs: number;
  logLevel: LogLevel;
  demoRows: number;
  store: StoreTarget;
  replica: {
    /** CHJOB_REPLICA_ID: this process's name in leases and `Job.replica`. */
    id: string;
    /** CHJOB_LEASE: how long a running job stays with a replica that stopped renewing it. */
    leaseMs: number;
    /** CHJOB_MAX_ATTEMPTS: runs of one job across restarts and take-overs. */
    maxAttempts: number;
  };
}
