#!/usr/bin/env node
// The `chjob` command (README "The chjob command"). Exit codes of the client
// commands: 0 DONE (or the call succeeded), 1 the job FAILED, 2 it was CANCELLED,
// 3 usage, connection or gRPC errors, 130 Ctrl-C while only watching.
import { Command, CommanderError, Option } from "commander";
import { DEFAULT_DEMO_ROWS } from "../config/defaults.js";
import { addConnectionOptions, CliError, EXIT } from "./connection.js";
import { fetchCommand } from "./fetch.js";
import { DEFAULT_HEALTH_TIMEOUT, type HealthOptions, healthCommand } from "./health.js";
import { cancelCommand, FORMAT_CHOICES, getCommand, listCommand, runCommand, watchCommand } from "./jobs.js";

const program = new Command()
  .name("chjob")
  .description("Run ClickHouse queries as asynchronous export jobs over gRPC")
  // Every error line starts with `chjob:`, commander's own too ("error: missing
  // required argument 'sql'" and its "(Did you mean --json?)" become one line).
  .configureOutput({ outputError: (text, write) => write(`chjob: ${text.trim().replace(/^error: /, "").replace(/\s*\n\s*/g, " ")}\n`) })
  .showHelpAfterError("chjob: `chjob --help` lists the commands")
  // Usage errors exit with 3 (not commander's 1, which means a FAILED job here).
  .exitOverride();

const jsonOption = () => new Option("--json", "one JSON object per line: the Job in protobuf JSON form");

/** Runs a command body; CliErrors become one line on stderr and their exit code. */
const action =
  <A extends unknown[]>(body: (...args: A) => Promise<number>) =>
  async (...args: A): Promise<void> => {
    let code: number;
    try {
      code = await body(...args);
    } catch (err) {
      if (err instanceof CliError) {
        process.stderr.write(`chjob: ${err.message}\n`);
        code = err.exitCode;
      } else {
        process.stderr.write(`chjob: ${(err as Error)?.message ?? String(err)}\n`);
        code = EXIT.USAGE;
      }
    }
    await exit(code);
  };

/** Exits once stdout and stderr have taken everything (grpc-js would otherwise keep the process up). */
async function exit(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write("", () => resolve()))));
  process.exit(code);
}

program
  .command("serve")
  .description("start the service (configuration from the environment and ./.env)")
  .action(async () => {
    // Loaded only here: the client commands start faster without the server's modules.
    const { serve } = await import("./serve.js");
    process.exitCode = await serve();
  });

addConnectionOptions(
  program
    .command("run")
    .description("create a job for a query and watch it until it ends (Ctrl-C cancels it on the server)")
    .argument("<sql...>", 'the query, best in quotes ("SELECT …"); `-` reads it from stdin')
    .option("--report <id>", "report_id of the job (A-Z a-z 0-9 _ -)", "cli")
    .option("--query <id>", "query_id of the job (default: q- and a random suffix)")
    .addOption(new Option("--format <format>", "format of the result file (default: csv, ClickHouse's CSVWithNames)").choices(Object.keys(FORMAT_CHOICES)))
    .addOption(new Option("--gzip", "compress the result file with gzip (.gz; not with parquet)").conflicts("zstd"))
    .addOption(new Option("--zstd", "compress the result file with Zstandard (.zst; not with parquet)"))
    .option("--reuse <duration>", "copy the result of the same query DONE within this long (e.g. 1h) instead of running it again")
    .option("--max-rows-to-read <n>", "ClickHouse's max_rows_to_read for this job (at most the service's)")
    .option("--max-bytes-to-read <n>", "ClickHouse's max_bytes_to_read for this job (at most the service's)")
    .option("--max-result-bytes <n>", "fail the job when its result file passes this many bytes (at most the service's)")
    .option("--timeout <duration>", "how long the job may run, e.g. 5m (at most the service's CHJOB_JOB_TIMEOUT)")
    .addOption(jsonOption()),
).action(action((sql: string[], opts) => runCommand(sql, opts)));

addConnectionOptions(
  program
    .command("watch")
    .description("follow a job until it ends (Ctrl-C stops watching; the job goes on)")
    .argument("<id>", "job id")
    .addOption(jsonOption()),
).action(action((id: string, opts) => watchCommand(id, opts)));

addConnectionOptions(
  program
    .command("get")
    .description("show a job")
    .argument("<id>", "job id")
    .addOption(jsonOption()),
).action(action((id: string, opts) => getCommand(id, opts)));

addConnectionOptions(
  program
    .command("cancel")
    .description("cancel a job (a finished job stays as it is)")
    .argument("<id>", "job id")
    .addOption(jsonOption()),
).action(action((id: string, opts) => cancelCommand(id, opts)));

addConnectionOptions(
  program
    .command("list")
    .description("list jobs, newest first")
    .option("--report <id>", "only this report's jobs")
    .option("--limit <n>", "at most this many jobs", "50")
    .addOption(new Option("--json", "one JSON object per line per job (protobuf JSON form)")),
).action(action((opts) => listCommand(opts)));

addConnectionOptions(
  program
    .command("fetch")
    .description("download a DONE job's result through its result_url (the service needs CHJOB_PRESIGN_TTL)")
    .argument("<id>", "job id")
    .option("-o, --output <file>", "where to write it (default: <job id>.<ext> in the current directory; - for stdout)")
    .option("--force", "overwrite the file if it exists"),
).action(action((id: string, opts) => fetchCommand(id, opts)));

addConnectionOptions(
  program
    .command("health")
    .description("ask the service's grpc.health.v1 Check (no token needed); exit 0 only when it answers SERVING, else 1")
    .option("--service <name>", "the service to ask about: the whole server (default) or chjob.v1.JobService")
    .option("--timeout <duration>", "how long to wait for the answer", DEFAULT_HEALTH_TIMEOUT),
  { token: false },
).action(action((opts: HealthOptions) => healthCommand(opts)));

program
  .command("demo-data")
  .description("(re)create the demo table uk_price_paid in the ClickHouse of DEKART_CLICKHOUSE_DATA_CONNECTION (embedded chDB when unset)")
  .option("--rows <n>", "number of synthetic rows", String(DEFAULT_DEMO_ROWS))
  .action(action(async (opts: { rows?: string }) => (await import("./demo-data.js")).demoDataCommand(opts)));

for (const command of program.commands) command.showHelpAfterError(`chjob: \`chjob ${command.name()} --help\` lists its options`);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has printed its message already. Help asked for (--help, `chjob help
    // [command]`) ends with exitCode 0; help shown for a missing command with 1.
    await exit(err.exitCode === 0 ? 0 : EXIT.USAGE);
  }
  throw err;
}
