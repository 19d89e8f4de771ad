// Every environment variable the service's configuration reads: CONTRACT.md §3, one entry each.
// Tests check deployment files (docker-compose.yml) against this list.
export const CONFIG_VARIABLES: readonly string[] = [
  "DEKART_DATASOURCE",
  "DEKART_CLICKHOUSE_DATA_CONNECTION",
  "DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION",
  "AWS_ENDPOINT",
  "DEKART_CLICKHOUSE_S3_ENDPOINT",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_REGION",
  "AWS_INSECURE",
  "DEKART_STORAGE",
  "DEKART_CLOUD_STORAGE_BUCKET",
  "CHJOB_GRPC_ADDRESS",
  "CHJOB_AUTH_TOKEN",
  "CHJOB_TLS_CERT",
  "CHJOB_TLS_KEY",
  "CHJOB_DATA_DIR",
  "CHJOB_EMBEDDED_S3_ADDRESS",
  "CHJOB_JOB_TIMEOUT",
  "CHJOB_MAX_CONCURRENT_JOBS",
  "CHJOB_MAX_QUEUED_JOBS",
  "CHJOB_JOB_RETENTION",
  "CHJOB_SHUTDOWN_GRACE",
  "CHJOB_MAX_QUERY_BYTES",
  "CHJOB_LOG_LEVEL",
  "CHJOB_DEMO_ROWS",
] as const;

/** Tuning variables beyond the contract's table (documented in the README). */
export const EXTRA_VARIABLES = [
  "CHJOB_MULTIPART_COPY_THRESHOLD",
  "CHJOB_MULTIPART_COPY_PART_SIZE",
  "CHJOB_PROGRESS_INTERVAL",
] as const;
