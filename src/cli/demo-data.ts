// `chjob demo-data`: (re)creates the demo table `uk_price_paid` in the ClickHouse of
// DEKART_CLICKHOUSE_DATA_CONNECTION (or in the embedded chDB when it is unset).
import { DEFAULT_DEMO_ROWS } from "../config/defaults.js";
import { loadEnv, parseConfig, secretsOf } from "../config/index.js";
import { openEngine } from "../clickhouse/open.js";
import { describeClickHouseError } from "../clickhouse/engine.js";
import { createRedactor } from "../redact.js";
import { DEMO_TABLE, demoTableSql } from "../demo/uk-price-paid.js";
import { CliError, EXIT } from "./connection.js";
import { formatCount, formatDuration } from "./format.js";

export async function demoDataCommand(opts: { rows?: string }): Promise<number> {
  const rows = opts.rows === undefined ? DEFAULT_DEMO_ROWS : Number(opts.rows.replace(/_/g, ""));
  if (!Number.isSafeInteger(rows) || rows < 0) throw new CliError(`--rows: ${JSON.stringify(opts.rows)} is not a whole number ≥ 0`);

  let env;
  try {
    env = loadEnv(process.cwd(), process.env);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const parsed = parseConfig(env, { cwd: process.cwd() });
  if ("errors" in parsed) {
    throw new CliError(`the configuration has ${parsed.errors.length} problem(s):\n${parsed.errors.map((e) => `  - ${e}`).join("\n")}`);
  }
  const { config } = parsed;
  const redact = createRedactor(secretsOf(config));

  let engine;
  try {
    engine = await openEngine(config.clickhouse, { maxConcurrent: 1, jobTimeoutMs: config.jobs.timeoutMs });
    await engine.ping();
  } catch (err) {
    await engine?.close();
    const why = redact(describeClickHouseError(err));
    throw new CliError(
      config.clickhouse.kind === "chdb"
        ? `cannot open the embedded ClickHouse (chDB) at ${config.clickhouse.path}: ${why}. Is \`chjob serve\` running on this data directory? Stop it first, or restart it with CHJOB_DEMO_ROWS=${rows} instead`
        : `DEKART_CLICKHOUSE_DATA_CONNECTION: ClickHouse at ${config.clickhouse.url} does not answer: ${why}`,
      EXIT.FAILED,
    );
  }
  const started = Date.now();
  try {
    process.stdout.write(`creating ${DEMO_TABLE} with ${formatCount(rows)} rows in ${engine.description}…\n`);
    for (const sql of demoTableSql(rows)) await engine.command(sql);
    const [count] = await engine.queryRows<{ n: string }>(`SELECT count() AS n FROM ${DEMO_TABLE}`);
    process.stdout.write(`${DEMO_TABLE}: ${formatCount(BigInt(count?.n ?? 0))} rows in ${formatDuration(Date.now() - started)}\n`);
    return EXIT.DONE;
  } catch (err) {
    throw new CliError(`creating ${DEMO_TABLE} failed: ${redact(describeClickHouseError(err))}`, EXIT.FAILED);
  } finally {
    await engine.close();
  }
}
