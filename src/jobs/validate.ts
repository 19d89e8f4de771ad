// Input rules (docs/api.md, "Input rules"), as pure functions that throw InvalidArgumentError
// naming the field and the fix.
import { InvalidArgumentError } from "../errors.js";
import { JOB_ID, type JobLimits } from "./job.js";
import { lexQuery } from "../clickhouse/sql-text.js";

const ID = /^[A-Za-z0-9_-]{1,128}$/;

/** `report_id` and `query_id` become S3 key segments: 1-128 of A-Z a-z 0-9 _ -. */
export function checkPathId(field: string, value: string): string {
  if (ID.test(value)) return value;
  if (value.length === 0) throw new InvalidArgumentError(field, "is empty; send 1-128 characters of A-Z a-z 0-9 _ -");
  if (value.length > 128) throw new InvalidArgumentError(field, `is ${value.length} characters long; at most 128 are allowed`);
  const bad = [...value].find((c) => !/[A-Za-z0-9_-]/.test(c))!;
  throw new InvalidArgumentError(field, `contains ${describeChar(bad)}; only A-Z a-z 0-9 _ - are allowed (it becomes an S3 key segment)`);
}

/** CreateJob's optional idempotency key: 1-128 of A-Z a-z 0-9 _ -. */
export function checkRequestId(value: string): string {
  if (ID.test(value)) return value;
  if (value.length > 128) throw new InvalidArgumentError("request_id", `is ${value.length} characters long; at most 128 are allowed`);
  const bad = [...value].find((c) => !/[A-Za-z0-9_-]/.test(c))!;
  throw new InvalidArgumentError("request_id", `contains ${describeChar(bad)}; only A-Z a-z 0-9 _ - are allowed (or leave it empty for none)`);
}

/** Job ids are the UUIDs CreateJob returned. */
export function checkJobId(value: string): string {
  if (value.length === 0) throw new InvalidArgumentError("job_id", "is empty; send the id CreateJob returned");
  if (!JOB_ID.test(value)) throw new InvalidArgumentError("job_id", "is not a job id (a lower-case UUID as CreateJob returns)");
  return value;
}

const CLAUSE_WORDS = new Set(["FROM", "AS", "WHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "SETTINGS", "UNION", "JOIN", "ON", "AND", "OR", "IS", "IN", "NOT", "LIKE", "BETWEEN", "DESC", "ASC", "END", "THEN", "ELSE", "WHEN", "WINDOW", "QUALIFY", "OFFSET"]);

/**
 * Checks a query text and returns what the export runs: its one statement,
 * without trailing `;`, blanks or comments after it.
 */
export function checkQueryText(text: string, maxBytes: number): string {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > maxBytes) {
    throw new InvalidArgumentError("query_text", `is ${bytes} bytes; at most ${maxBytes} are accepted (CHJOB_MAX_QUERY_BYTES)`);
  }
  if (text.trim().length === 0) throw new InvalidArgumentError("query_text", "is empty; send one SELECT statement");
  if (text.includes("\0")) throw new InvalidArgumentError("query_text", "contains a NUL character");
  const lexed = lexQuery(text);
  if (lexed.unterminated) throw new InvalidArgumentError("query_text", `has an unterminated ${lexed.unterminated}`);
  if (lexed.statements.length === 0) {
    throw new InvalidArgumentError("query_text", "holds no statement (only `;`, blanks or comments); send one SELECT statement");
  }
  if (lexed.statements.length > 1) {
    throw new InvalidArgumentError("query_text", `holds ${lexed.statements.length} statements; send exactly one SELECT statement (a \`;\` may only end it)`);
  }
  const statement = lexed.statements[0]!;
  const words = lexed.words;
  const head = stripLeadingComments(statement);
  if (!/^(SELECT|WITH)\b/i.test(head) && !head.startsWith("(")) {
    const start = /^[A-Za-z_]+/.exec(head)?.[0].toUpperCase() ?? JSON.stringify(head.slice(0, 10));
    throw new InvalidArgumentError("query_text", `must be a SELECT query (starting with SELECT, WITH or "("); it starts with ${start}`);
  }
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const next = words[i + 1];
    if (w.text === "INTO" && next?.text === "OUTFILE") {
      throw new InvalidArgumentError("query_text", "must not use INTO OUTFILE: the result is exported to S3 by the service");
    }
    if (w.text === "FORMAT" && w.depth === 0 && next && !CLAUSE_WORDS.has(next.text) && onlyBlanksBetween(text, w, next)) {
      throw new InvalidArgumentError("query_text", "must not set FORMAT: results are always exported as CSVWithNames");
    }
  }
  return statement;
}

function onlyBlanksBetween(text: string, a: { at: number; text: string }, b: { at: number }): boolean {
  return /^\s+$/.test(text.slice(a.at + a.text.length, b.at));
}

function stripLeadingComments(sql: string): string {
  let s = sql.trimStart();
  for (;;) {
    if (s.startsWith("--") || s.startsWith("#")) s = s.slice(s.indexOf("\n") < 0 ? s.length : s.indexOf("\n") + 1).trimStart();
    else if (s.startsWith("/*")) s = s.slice(s.indexOf("*/") < 0 ? s.length : s.indexOf("*/") + 2).trimStart();
    else return s;
  }
}

function describeChar(c: string): string {
  const code = c.codePointAt(0)!;
  if (code < 0x20 || code === 0x7f) return `the control character U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  if (c === " ") return "a space";
  return `"${c}"`;
}

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;

/** ListJobs page size, as Google's AIP-158 has it: 0 means the default, above the maximum means the maximum. */
export function checkPageSize(size: number): number {
  if (size < 0) throw new InvalidArgumentError("page_size", `is ${size}; send 1-${MAX_PAGE_SIZE}, or 0 for the default of ${DEFAULT_PAGE_SIZE}`);
  if (size === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(size, MAX_PAGE_SIZE);
}

/** A google.protobuf.Duration in milliseconds; undefined when unset. INVALID_ARGUMENT unless positive. */
export function checkDuration(field: string, d: { seconds: bigint; nanos: number } | undefined): number | undefined {
  if (d === undefined) return undefined;
  const ms = Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
  if (!(ms > 0) || d.nanos < 0) throw new InvalidArgumentError(field, "must be a positive duration (or unset)");
  return ms;
}

export interface RequestedLimits {
  maxRowsToRead?: bigint;
  maxBytesToRead?: bigint;
  maxResultBytes?: bigint;
  timeout?: { seconds: bigint; nanos: number };
}

export interface LimitDefaults {
  maxRowsToRead: number | undefined;
  maxBytesToRead: number | undefined;
  maxResultBytes: number | undefined;
  /** CHJOB_JOB_TIMEOUT. */
  timeoutMs: number;
}

const LIMIT_FIELDS = [
  ["maxRowsToRead", "max_rows_to_read", "CHJOB_MAX_ROWS_TO_READ"],
  ["maxBytesToRead", "max_bytes_to_read", "CHJOB_MAX_BYTES_TO_READ"],
  ["maxResultBytes", "max_result_bytes", "CHJOB_MAX_RESULT_BYTES"],
] as const;

/**
 * A job's limits: the service's defaults, lowered where the request asks. A request may
 * never raise one (INVALID_ARGUMENT naming the field and the service's value).
 */
export function checkLimits(req: RequestedLimits, defaults: LimitDefaults): JobLimits {
  const limits: JobLimits = { timeoutMs: defaults.timeoutMs };
  for (const [key, field, variable] of LIMIT_FIELDS) {
    const asked = req[key];
    const cap = defaults[key];
    if (asked === undefined) {
      if (cap !== undefined) limits[key] = cap;
      continue;
    }
    if (asked < 1n) throw new InvalidArgumentError(field, `must be at least 1 (leave it unset for ${cap === undefined ? "no limit" : `the service's ${cap}`})`);
    if (cap !== undefined && asked > BigInt(cap)) {
      throw new InvalidArgumentError(field, `${asked} is above the service's limit ${cap} (${variable}); a request may lower it, not raise it`);
    }
    if (asked > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidArgumentError(field, `${asked} is too large`);
    limits[key] = Number(asked);
  }
  const timeoutMs = checkDuration("timeout", req.timeout);
  if (timeoutMs !== undefined) {
    if (timeoutMs > defaults.timeoutMs) {
      throw new InvalidArgumentError("timeout", `${timeoutMs} ms is above the service's CHJOB_JOB_TIMEOUT (${defaults.timeoutMs} ms); a request may shorten it, not lengthen it`);
    }
    limits.timeoutMs = timeoutMs;
  }
  return limits;
}
