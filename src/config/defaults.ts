// The defaults of a start with nothing configured (the embedded, demo setup), each written once:
// the configuration table (./variables.ts), parseConfig (./parse.ts) and the `chjob` command
// read them from here. README, "Configuration" and "Embedded mode".

/** CHJOB_GRPC_ADDRESS, and where the `chjob` command dials without --address. */
export const DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051";
/** CHJOB_EMBEDDED_S3_ADDRESS. */
export const DEFAULT_EMBEDDED_S3_ADDRESS = "127.0.0.1:4566";
/** CHJOB_DEMO_ROWS, and `chjob demo-data` without --rows. */
export const DEFAULT_DEMO_ROWS = 1_000_000;

/** Documented credentials of the embedded S3 server when the user gives none. */
export const EMBEDDED_ACCESS_KEY_ID = "chjob";
export const EMBEDDED_SECRET_ACCESS_KEY = "chjob-local-secret";
/** DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION and DEKART_CLOUD_STORAGE_BUCKET in embedded mode. */
export const EMBEDDED_OUTPUT_LOCATION = "dekart-dev-local/files";
export const EMBEDDED_STORAGE_BUCKET = "dekart-dev-local";
