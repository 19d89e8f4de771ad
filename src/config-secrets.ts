import type { ClickHouseTarget } from "./config-types.js";

/** The ClickHouse password, for redaction; undefined for the embedded engine. */
export function passwordOf(target: ClickHouseTarget): string | undefined {
  return target.kind === "http" ? target.password : undefined;
}
