// `chjob serve`: parse the configuration once, start the service, drain on SIGTERM/SIGINT.
// Exit codes (README "Exit status of chjob serve"): 0 stopped after a signal, 1 could not
// start, 2 a bad configuration or a listen address that cannot be used (3, usage, is main.ts's).
import { loadEnv, parseConfig, secretsOf } from "../config/index.js";
import { startService } from "../app.js";
import { ConfigurationConflictError } from "../errors.js";
import { createLogger } from "../log.js";
import { createRedactor } from "../redact.js";
import { adoptOtelVariables } from "../telemetry/index.js";

export async function serve(): Promise<number> {
  let env;
  try {
    env = loadEnv(process.cwd(), process.env);
  } catch (err) {
    process.stderr.write(`chjob: ${(err as Error).message}\n`);
    return 2;
  }
  const parsed = parseConfig(env, { cwd: process.cwd() });
  if ("errors" in parsed) {
    process.stderr.write(`chjob: the configuration has ${parsed.errors.length} problem(s):\n${parsed.errors.map((e) => `  - ${e}\n`).join("")}`);
    return 2;
  }
  const { config } = parsed;
  adoptOtelVariables(env); // a .env's OTEL_* reach the OpenTelemetry SDK, which reads process.env
  const pool = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  if (config.clickhouse.kind === "chdb" && pool < config.jobs.maxConcurrent + 5) {
    // See launch.cts: each running chDB query holds a pool thread.
    process.stderr.write(`chjob: UV_THREADPOOL_SIZE=${pool} is too small for ${config.jobs.maxConcurrent} embedded exports; set it to at least ${config.jobs.maxConcurrent + 5} (or leave it unset)\n`);
  }
  const redact = createRedactor(secretsOf(config));
  const log = createLogger(config.logLevel, redact);
  if (Number(process.versions.node.split(".")[0]) < 22) {
    log.info({ node: process.version }, "Node.js 20 reached end of life in April 2026: chjob runs on it, but Node 24 is recommended (22 is maintained; AWS SDK releases after early January 2027 need 22 or later)");
  }
  // Listening from before the start: a signal that comes while starting (or between the
  // "chjob serving" line and the end of startService) stops the service once it is up.
  // The handlers go with the first signal: a second one ends the process at once.
  const stopRequested = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, "signal received");
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      resolve();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
  let service;
  try {
    service = await startService(config, log, redact);
  } catch (err) {
    log.fatal({ err: redact((err as Error).message) }, "chjob could not start");
    process.stderr.write(`chjob: could not start: ${redact((err as Error).message)}\n`);
    // A port that cannot be listened on is fixed in the configuration, like the problems above.
    return err instanceof ConfigurationConflictError ? 2 : 1;
  }
  await stopRequested;
  await service.stop();
  return 0;
}

