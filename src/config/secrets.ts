// The configuration's secrets, for the redactor (src/redact.ts) that every log line, job error
// and listing passes through.

import type { ClickHouseTarget, Config, StoreTarget } from "./types.js";

/** The ClickHouse password, for redaction; undefined for the embedded engine. */
export function passwordOf(target: ClickHouseTarget): string | undefined {
  return target.kind === "http" ? target.password : undefined;
}

/**
 * The job store's password: decoded, and as written in the URL (percent-encoded as the user wrote
 * it, which need not be how encodeURIComponent writes it). Empty for PGlite or no password.
 */
export function storePasswordsOf(target: StoreTarget): string[] {
  if (target.kind !== "postgres") return [];
  let raw: string;
  try {
    raw = new URL(target.url).password;
  } catch {
    return [];
  }
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // parseConfig accepts only decodable passwords; keep the raw form regardless.
  }
  return [...new Set([decoded, raw])].filter((s) => s !== "");
}

/** Every secret of the configuration: the S3 secret key, the auth token and both databases' passwords. */
export function secretsOf(config: Config): string[] {
  return [config.s3.secretAccessKey, config.grpc.authToken, passwordOf(config.clickhouse), ...storePasswordsOf(config.store)].filter(
    (s): s is string => s !== undefined && s !== "",
  );
}
