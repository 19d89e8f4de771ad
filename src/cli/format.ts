// How the `chjob` command shows jobs to people: numbers, sizes, durations, the
// one-line progress, the final summary and the job table. Pure functions.
import { toJson } from "@bufbuild/protobuf";
import { timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Compression, Format, JobSchema, JobStatus, type Job } from "../../gen/chjob/v1/job_service_pb.js";

/** `DONE`, `READING_RESULTS`, … (the enum name without `JOB_STATUS_`). */
export function statusName(status: JobStatus): string {
  return JobStatus[status] ?? `STATUS_${status}`;
}


/** The job as protobuf JSON (camelCase names, int64 as strings, enum names), every field present. */
export function jobJson(job: Job): string {
  return JSON.stringify(toJson(JobSchema, job, { alwaysEmitImplicit: true }));
}

/** 1234567 → "1,234,567". */
export function formatCount(n: bigint | number): string {
  return BigInt(n).toLocaleString("en-US");
}

/** Bytes in IEC units: "0 B", "812 B", "12.3 KiB", "4.0 GiB". */
export function formatBytes(n: bigint | number): string {
  let v = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** 450 → "0.5s", 65_000 → "1m05s", 3_723_000 → "1h02m03s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.floor(ms / 1000);
  const two = (x: number) => String(x).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m${two(s % 60)}s`;
}

export function ms(ts: Timestamp | undefined): number | undefined {
  return ts ? timestampMs(ts) : undefined;
}

/** Local time, `2025-06-01 14:03:07`. */
export function formatTime(ts: Timestamp | undefined): string {
  const t = ms(ts);
  if (t === undefined) return "-";
  const d = new Date(t);
  const two = (x: number) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

/** From creation to the last change (for a finished job: its whole life). */
export function jobDurationMs(job: Job): number {
  const created = ms(job.createdAt);
  const updated = ms(job.updatedAt);
  return created === undefined || updated === undefined ? 0 : Math.max(0, updated - created);
}

/** "1,234,567 rows read, 45.3 MiB" (or "" before anything was read). */
export function progressText(job: Job): string {
  const p = job.progress;
  if (!p || (p.rowsRead === 0n && p.bytesRead === 0n)) return "";
  const rows = p.totalRowsToRead > 0n ? `${formatCount(p.rowsRead)} of ${formatCount(p.totalRowsToRead)} rows read` : `${formatCount(p.rowsRead)} rows read`;
  return `${rows}, ${formatBytes(p.bytesRead)}`;
}

/** Fraction done in [0, 1] when ClickHouse knows how many rows it will read. */
export function fractionDone(job: Job): number | undefined {
  const p = job.progress;
  if (!p || p.totalRowsToRead <= 0n) return undefined;
  return Math.min(1, Number(p.rowsRead) / Number(p.totalRowsToRead));
}

const SPINNER = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/** `████████░░░░░░░░░░░░ 43%` */
function bar(fraction: number, cells = 20): string {
  const f = Math.min(1, Math.max(0, fraction));
  const full = Math.floor(f * cells);
  return `${"█".repeat(full)}${"░".repeat(cells - full)} ${Math.floor(f * 100)}%`;
}

/** Cuts a line to the terminal's width: a wider one wraps, and `\r` would then redraw only its last part. */
function fit(line: string, width: number): string {
  const chars = [...line];
  return chars.length >= width ? chars.slice(0, Math.max(1, width - 2)).join("") + "…" : line;
}

/** 717994593 → "718.0M" (the live line is narrow). */
export function formatCompact(n: bigint | number): string {
  const v = Number(n);
  if (v < 10_000) return String(v);
  const units: Array<[number, string]> = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  const [div, unit] = units.find(([d]) => v >= d)!;
  return `${(v / div).toFixed(1)}${unit}`;
}

/** The live line on a terminal: spinner, status, elapsed, bar and percentage (when known), rows and bytes read. */
export function liveLine(job: Job, elapsedMs: number, tick: number, width: number): string {
  const parts = [`${SPINNER[tick % SPINNER.length]} ${statusName(job.status)}`, formatDuration(elapsedMs)];
  const fraction = job.status === JobStatus.RUNNING ? fractionDone(job) : undefined;
  if (fraction !== undefined) parts.push(bar(fraction));
  const p = job.progress;
  if (p && (p.rowsRead > 0n || p.bytesRead > 0n)) parts.push(`${formatCompact(p.rowsRead)} rows, ${formatBytes(p.bytesRead)} read`);
  return fit(parts.join("  "), width);
}

/** The live line of `chjob fetch` on a terminal: spinner, elapsed, bar (when the size is known), bytes and rate. */
export function downloadLine(received: number, total: number | undefined, elapsedMs: number, tick: number, width: number): string {
  const parts = [`${SPINNER[tick % SPINNER.length]} fetching`, formatDuration(elapsedMs)];
  if (total !== undefined && total > 0) parts.push(bar(received / total), `${formatBytes(received)} of ${formatBytes(total)}`);
  else parts.push(formatBytes(received));
  if (elapsedMs >= 500) parts.push(`${formatBytes(Math.round((received * 1000) / elapsedMs))}/s`);
  return fit(parts.join("  "), width);
}

const FORMAT_NAMES: Partial<Record<Format, string>> = {
  [Format.CSV_WITH_NAMES]: "CSVWithNames",
  [Format.PARQUET]: "Parquet",
  [Format.JSON_EACH_ROW]: "JSONEachRow",
  [Format.ARROW]: "Arrow",
  [Format.TSV_WITH_NAMES]: "TSVWithNames",
};

/** "Parquet", "CSVWithNames, gzip"; undefined from a service that predates formats. */
export function resultFormat(job: Job): string | undefined {
  const name = FORMAT_NAMES[job.format];
  if (name === undefined) return undefined;
  const compression = job.compression === Compression.GZIP ? "gzip" : job.compression === Compression.ZSTD ? "zstd" : undefined;
  return compression ? `${name}, ${compression}` : name;
}

/** One line per status change (not a terminal). */
export function statusLine(job: Job): string {
  const name = statusName(job.status);
  switch (job.status) {
    case JobStatus.PENDING:
      return `job ${job.id}: ${name} (report ${job.reportId}, query ${job.queryId})`;
    case JobStatus.READING_RESULTS: {
      const read = progressText(job);
      return `job ${job.id}: ${name}${read ? ` (export finished: ${read})` : ""}`;
    }
    case JobStatus.DONE:
      return `job ${job.id}: ${name} in ${formatDuration(jobDurationMs(job))}`;
    case JobStatus.FAILED:
      // The error itself goes to stderr (see the commands).
      return `job ${job.id}: ${name}`;
    case JobStatus.CANCELLED:
      return `job ${job.id}: ${name}${job.error ? ` (${oneLine(job.error)})` : ""}`;
    default:
      return `job ${job.id}: ${name}`;
  }
}

/** Shown for a figure the engine did not measure (chDB with exports side by side). */
const NOT_MEASURED = "not measured";

/** The summary of a finished job: aligned `key  value` lines. */
export function summaryLines(job: Job): string[] {
  const rows: Array<[string, string]> = [];
  if (job.status === JobStatus.DONE) {
    rows.push(["result_uri", job.resultUri]);
    if (job.resultUrl) rows.push(["result_url", job.resultUrl]);
    const format = resultFormat(job);
    if (format) rows.push(["format", format]);
    rows.push(["size", `${formatBytes(job.resultSize)} (${formatCount(job.resultSize)} bytes)`]);
    rows.push(["rows", job.totalRows === undefined ? NOT_MEASURED : formatCount(job.totalRows)]);
    rows.push(["read", job.bytesProcessed === undefined ? NOT_MEASURED : formatBytes(job.bytesProcessed)]);
    if (job.reusedFrom) rows.push(["reused_from", `${job.reusedFrom} (its result copied; the query did not run)`]);
  }
  rows.push(["duration", formatDuration(jobDurationMs(job))]);
  return aligned(rows);
}

/** Every field of a job, for `chjob get`. */
export function detailLines(job: Job): string[] {
  const p = job.progress;
  const rows: Array<[string, string]> = [
    ["id", job.id],
    ["status", statusName(job.status)],
    ["report_id", job.reportId],
    ["query_id", job.queryId],
    ["query_text", oneLine(job.queryText)],
    ["created_at", formatTime(job.createdAt)],
    ["updated_at", formatTime(job.updatedAt)],
    ["duration", formatDuration(jobDurationMs(job))],
  ];
  if (job.error) rows.push(["error", oneLine(job.error)]);
  const format = resultFormat(job);
  if (format) rows.push(["format", format]);
  if (job.contentType) rows.push(["content_type", job.contentType]);
  if (job.exportUri) rows.push(["export_uri", job.exportUri]);
  if (job.resultUri) rows.push(["result_uri", job.resultUri]);
  if (job.resultUrl) rows.push(["result_url", job.resultUrl]);
  if (job.reusedFrom) rows.push(["reused_from", job.reusedFrom]);
  if (job.status === JobStatus.DONE) {
    rows.push(["result_size", `${formatBytes(job.resultSize)} (${formatCount(job.resultSize)} bytes)`]);
    rows.push(["total_rows", job.totalRows === undefined ? NOT_MEASURED : formatCount(job.totalRows)]);
    rows.push(["bytes_processed", job.bytesProcessed === undefined ? NOT_MEASURED : `${formatBytes(job.bytesProcessed)} (${formatCount(job.bytesProcessed)} bytes)`]);
  }
  if (p && (p.rowsRead > 0n || p.totalRowsToRead > 0n)) {
    rows.push(["progress", `${progressText(job) || "nothing read yet"}${p.elapsedMs > 0n ? ` in ${formatDuration(Number(p.elapsedMs))}` : ""}`]);
  }
  return aligned(rows);
}

/** The `chjob list` table. */
export function jobTable(jobs: Job[]): string[] {
  const header = ["ID", "REPORT", "QUERY", "STATUS", "ROWS", "SIZE", "CREATED"];
  const body = jobs.map((j) => [
    j.id,
    j.reportId,
    j.queryId,
    statusName(j.status),
    j.status === JobStatus.DONE && j.totalRows !== undefined ? formatCount(j.totalRows) : "-",
    j.status === JobStatus.DONE ? formatBytes(j.resultSize) : "-",
    formatTime(j.createdAt),
  ]);
  const right = new Set([4, 5]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  return [header, ...body].map((r) =>
    r
      .map((cell, i) => (right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd(),
  );
}

function aligned(rows: Array<[string, string]>): string[] {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
}

/** Errors and query texts may span lines; a line-per-item output must not. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}
