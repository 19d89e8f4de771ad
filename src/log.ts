// Structured JSON logs on stdout (pino); every line passes the redactor on its way out.
import { pino, type Logger } from "pino";
import type { LogLevel } from "./config/types.js";
import type { Redactor } from "./redact.js";

export type { Logger };

export function createLogger(level: LogLevel, redact: Redactor, out: NodeJS.WritableStream = process.stdout): Logger {
  const destination = { write: (line: string) => out.write(redact(line)) };
  return pino({ level, base: { service: "chjob" }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
