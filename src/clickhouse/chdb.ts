// chDB (ClickHouse in-process), loaded lazily: it is an optional dependency
// needed only in embedded mode.
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from "@clickhouse/client";

type ChdbConnectionModule = typeof import("chdb/connection");
type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>["connection"];

let loaded: Promise<ChdbConnectionModule> | undefined;

export function loadChdb(): Promise<ChdbConnectionModule> {
  loaded ??= import("chdb/connection").catch((err: Error) => {
    loaded = undefined;
    throw new Error(
      `the embedded ClickHouse engine (npm package chdb) could not be loaded: ${err.message}. ` +
        "Install it with `npm install chdb`, or set DEKART_CLICKHOUSE_DATA_CONNECTION to a ClickHouse server.",
    );
  });
  return loaded;
}

/**
 * A @clickhouse/client over one chDB session on `path`. chDB binds one data
 * path per process; sessions on that path run side by side.
 */
export async function chdbClient(path: string): Promise<ClickHouseClient> {
  const chdb = await loadChdb();
  // chdb implements @clickhouse/client-common's Connection, which
  // @clickhouse/client bundles as its own (structurally equal) copy.
  const connection = chdb.createChdbConnection({ path }) as unknown as ClientConnection;
  return createClient({ connection, log: { level: ClickHouseLogLevel.OFF } });
}
