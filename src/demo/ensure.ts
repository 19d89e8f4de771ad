// Creates the demo table at an embedded start: once, and again only when the row count asked for changes.
import type { ClickHouseEngine } from "../clickhouse/engine.js";
import type { Logger } from "../log.js";
import { DEMO_TABLE, demoTableSql } from "./uk-price-paid.js";

export async function ensureDemoTable(engine: ClickHouseEngine, rows: number, log: Logger): Promise<void> {
  const [table] = await engine.queryRows<{ n: string }>(
    `SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = '${DEMO_TABLE}'`,
  );
  if (Number(table?.n) > 0) {
    const [count] = await engine.queryRows<{ n: string }>(`SELECT count() AS n FROM ${DEMO_TABLE}`);
    if (Number(count?.n) === rows) {
      log.info({ table: DEMO_TABLE, rows }, "demo table present");
      return;
    }
  }
  const started = Date.now();
  for (const sql of demoTableSql(rows)) await engine.command(sql);
  log.info({ table: DEMO_TABLE, rows, ms: Date.now() - started }, "demo table created");
}
