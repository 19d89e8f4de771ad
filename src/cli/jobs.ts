// The client commands: run, watch, get, cancel, list.
import { randomBytes } from "node:crypto";
import { Compression, Format, JobStatus, type Job } from "../../gen/chjob/v1/job_service_pb.js";
import { parseDuration } from "../durations.js";
import { CALL_TIMEOUT_MS, call, callError, CliError, connect, EXIT, type ConnectionOptions, type Target } from "./connection.js";
import { detailLines, jobJson, jobTable, liveLine, ms, oneLine, statusLine, statusName, summaryLines } from "./format.js";
import { isTerminal } from "../jobs/job.js";

export interface OutputOptions {
  json?: boolean;
}

const ID = /^[A-Za-z0-9_-]{1,128}$/;

/** A short random id for --query: `q-` and 8 letters/digits. */
export function generatedQueryId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return `q-${[...randomBytes(8)].map((b) => alphabet[b % alphabet.length]).join("")}`;
}

function checkId(flag: string, value: string): string {
  if (!ID.test(value)) throw new CliError(`${flag}: ${JSON.stringify(value)} must be 1-128 characters of A-Z a-z 0-9 _ - (it becomes an S3 key segment)`);
  return value;
}

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

/** The exit code for a job's final status. */
export function exitCodeOf(job: Job): number {
  switch (job.status) {
    case JobStatus.DONE:
      return EXIT.DONE;
    case JobStatus.FAILED:
      return EXIT.FAILED;
    case JobStatus.CANCELLED:
      return EXIT.CANCELLED;
    default:
      return EXIT.USAGE;
  }
}

// ---------------------------------------------------------------------------------------------
// Showing a job's states: a live line on a terminal, a line per status change otherwise, or JSON.

interface Renderer {
  /** Every state the watch stream delivers. */
  update(job: Job): void;
  /** A remark (e.g. "cancelling…"); goes to stderr, never into the data stream. */
  note(text: string): void;
  /** The job has reached a final status. */
  finish(job: Job): void;
  /** Stops any timer, leaving the terminal tidy. */
  stop(): void;
}

class JsonRenderer implements Renderer {
  update(job: Job) {
    out(jobJson(job));
  }
  note(text: string) {
    err(`chjob: ${text}`);
  }
  finish(job: Job) {
    if (job.status === JobStatus.FAILED) err(`chjob: job ${job.id} failed: ${oneLine(job.error)}`);
  }
  stop() {}
}

class LineRenderer implements Renderer {
  private lastStatus: JobStatus | undefined;
  update(job: Job) {
    if (job.status === this.lastStatus) return;
    this.lastStatus = job.status;
    out(statusLine(job));
  }
  note(text: string) {
    err(`chjob: ${text}`);
  }
  finish(job: Job) {
    finalReport(job);
  }
  stop() {}
}

class TtyRenderer implements Renderer {
  private job: Job | undefined;
  private tick = 0;
  private readonly timer: NodeJS.Timeout;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream) {
    this.timer = setInterval(() => this.draw(), 100);
  }

  update(job: Job) {
    this.job = job;
    this.draw();
  }

  note(text: string) {
    this.clear();
    err(`chjob: ${text}`);
    this.draw();
  }

  finish(job: Job) {
    this.stop();
    out(statusLine(job));
    finalReport(job);
  }

  stop() {
    clearInterval(this.timer);
    this.clear();
  }

  private draw() {
    if (!this.job) return;
    this.tick++;
    const created = ms(this.job.createdAt);
    const elapsed = created === undefined ? 0 : Date.now() - created;
    this.stream.write(`\r\x1b[2K${liveLine(this.job, elapsed, this.tick, this.stream.columns || 80)}`);
    this.drawn = true;
  }

  private clear() {
    if (this.drawn) this.stream.write("\r\x1b[2K");
    this.drawn = false;
  }
}

/** After the final status line: the result on stdout, or the job's error on stderr. */
function finalReport(job: Job): void {
  if (job.status === JobStatus.FAILED) {
    for (const line of summaryLines(job)) out(line);
    err(`chjob: job ${job.id} failed: ${oneLine(job.error)}`);
    return;
  }
  for (const line of summaryLines(job)) out(line);
}

function renderer(opts: OutputOptions): Renderer {
  if (opts.json) return new JsonRenderer();
  return process.stdout.isTTY ? new TtyRenderer(process.stdout) : new LineRenderer();
}

// ---------------------------------------------------------------------------------------------

interface FollowOptions {
  /** Ctrl-C cancels the job on the server (run) instead of only leaving (watch). */
  cancelOnInterrupt: boolean;
}

/** Watches a job to its end, showing each state; resolves with the exit code. */
async function follow(target: Target, jobId: string, view: Renderer, opts: FollowOptions): Promise<number> {
  const { states, call: stream } = target.client.watchJob(jobId);
  let last: Job | undefined;
  let interrupted = 0;
  let cancelled: Job | undefined;
  let settled = false;
  let fallback: NodeJS.Timeout | undefined;
  let resolveAbort: (code: number) => void = () => {};
  const aborted = new Promise<number>((resolve) => (resolveAbort = resolve));

  const onSigint = () => {
    interrupted++;
    if (!opts.cancelOnInterrupt) {
      view.stop();
      err(`chjob: stopped watching job ${jobId}; it keeps running on the server (\`chjob cancel ${jobId}\` stops it)`);
      stream.cancel();
      resolveAbort(EXIT.INTERRUPTED);
      return;
    }
    if (interrupted > 1) {
      view.stop();
      err(`chjob: not waiting for job ${jobId} to stop; \`chjob get ${jobId}\` shows its status`);
      stream.cancel();
      resolveAbort(EXIT.INTERRUPTED);
      return;
    }
    view.note(`cancelling job ${jobId} on the server… (Ctrl-C again to stop waiting)`);
    target.client.cancelJob(jobId, 5000).then(
      (job) => {
        cancelled = job;
        // The watch stream brings the final state; should it not come, the cancel answer is it.
        fallback = setTimeout(() => {
          if (settled) return;
          view.stop();
          if (cancelled && isTerminal(cancelled.status)) {
            view.update(cancelled);
            view.finish(cancelled);
          }
          stream.cancel();
          resolveAbort(cancelled && isTerminal(cancelled.status) ? exitCodeOf(cancelled) : EXIT.USAGE);
        }, 5000);
      },
      (e: unknown) => {
        view.stop();
        err(`chjob: could not cancel job ${jobId}: ${callError(e, target.address).message}`);
        stream.cancel();
        resolveAbort(EXIT.USAGE);
      },
    );
  };
  process.on("SIGINT", onSigint);

  const watched = (async () => {
    try {
      for await (const job of states) {
        last = job;
        view.update(job);
      }
    } catch (e) {
      if (interrupted > 0) return aborted; // our own stream.cancel()
      view.stop();
      const error = callError(e, target.address);
      if (last) error.message += `; job ${jobId} was ${statusName(last.status)} then: \`chjob watch ${jobId}\` to follow it again`;
      throw error;
    }
    view.stop();
    if (!last || !isTerminal(last.status)) {
      throw new CliError(`the watch of job ${jobId} ended before the job did${last ? ` (last seen ${statusName(last.status)})` : ""}`);
    }
    view.finish(last);
    return exitCodeOf(last);
  })();

  try {
    return await Promise.race([watched, aborted]);
  } finally {
    settled = true;
    clearTimeout(fallback);
    process.off("SIGINT", onSigint);
    view.stop();
  }
}

// ---------------------------------------------------------------------------------------------

export interface RunOptions extends ConnectionOptions, OutputOptions {
  report?: string;
  query?: string;
  format?: string;
  gzip?: boolean;
  zstd?: boolean;
  reuse?: string;
  maxRowsToRead?: string;
  maxBytesToRead?: string;
  maxResultBytes?: string;
  timeout?: string;
}

/** `--format` values: the file extensions of the formats. */
export const FORMAT_CHOICES: Record<string, Format> = {
  csv: Format.CSV_WITH_NAMES,
  parquet: Format.PARQUET,
  jsonl: Format.JSON_EACH_ROW,
  arrow: Format.ARROW,
  tsv: Format.TSV_WITH_NAMES,
};

/** A Go-style duration flag (`90s`, `1h30m`) as a protobuf Duration. */
function durationFlag(flag: string, text: string | undefined): { seconds: bigint; nanos: number } | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined) throw new CliError(`${flag}: ${JSON.stringify(text)} is not a duration; use e.g. 90s, 30m or 1h30m`);
  if (ms <= 0) throw new CliError(`${flag}: must be longer than 0; use e.g. 90s, 30m or 1h30m`);
  const whole = Math.floor(ms / 1000);
  return { seconds: BigInt(whole), nanos: Math.round((ms - whole * 1000) * 1e6) };
}

/** A whole-number flag (≥ 1) as an int64. */
function countFlag(flag: string, text: string | undefined): bigint | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || BigInt(text) < 1n) throw new CliError(`${flag}: ${JSON.stringify(text)} is not a whole number ≥ 1`);
  return BigInt(text);
}

/** The result and limit fields of CreateJob from run's flags (usage errors before anything is sent). */
function resultRequest(opts: RunOptions) {
  return {
    format: opts.format === undefined ? Format.UNSPECIFIED : FORMAT_CHOICES[opts.format]!,
    compression: opts.gzip ? Compression.GZIP : opts.zstd ? Compression.ZSTD : Compression.UNSPECIFIED,
    reuseMaxAge: durationFlag("--reuse", opts.reuse),
    maxRowsToRead: countFlag("--max-rows-to-read", opts.maxRowsToRead),
    maxBytesToRead: countFlag("--max-bytes-to-read", opts.maxBytesToRead),
    maxResultBytes: countFlag("--max-result-bytes", opts.maxResultBytes),
    timeout: durationFlag("--timeout", opts.timeout),
  };
}

export async function runCommand(sqlParts: string[], opts: RunOptions): Promise<number> {
  const result = resultRequest(opts);
  let sql = sqlParts.join(" ");
  if (sql === "-") sql = await readStdin();
  if (sql.trim() === "") throw new CliError("no query: give the SQL as an argument (quoted), or `-` to read it from stdin");
  const reportId = checkId("--report", opts.report ?? "cli");
  const queryId = checkId("--query", opts.query ?? generatedQueryId());
  const target = await connect(opts);
  try {
    const created = await call(target, (c) => c.createJob({ reportId, queryId, queryText: sql, ...result }, CALL_TIMEOUT_MS));
    const view = renderer(opts);
    if (!opts.json) out(`job ${created.id} created (report ${created.reportId}, query ${created.queryId}); follow it elsewhere with: npx chjob watch ${created.id}`);
    return await follow(target, created.id, view, { cancelOnInterrupt: true });
  } finally {
    target.client.close();
  }
}

export async function watchCommand(jobId: string, opts: ConnectionOptions & OutputOptions): Promise<number> {
  const target = await connect(opts);
  try {
    // GetJob first: a wrong id is a NOT_FOUND/INVALID_ARGUMENT status rather than a stream error.
    await call(target, (c) => c.getJob(jobId, CALL_TIMEOUT_MS));
    return await follow(target, jobId, renderer(opts), { cancelOnInterrupt: false });
  } finally {
    target.client.close();
  }
}

export async function getCommand(jobId: string, opts: ConnectionOptions & OutputOptions): Promise<number> {
  const target = await connect(opts);
  try {
    const job = await call(target, (c) => c.getJob(jobId, CALL_TIMEOUT_MS));
    if (opts.json) out(jobJson(job));
    else detailLines(job).forEach(out);
    return EXIT.DONE;
  } finally {
    target.client.close();
  }
}

export async function cancelCommand(jobId: string, opts: ConnectionOptions & OutputOptions): Promise<number> {
  const target = await connect(opts);
  try {
    const before = await call(target, (c) => c.getJob(jobId, CALL_TIMEOUT_MS));
    const job = await call(target, (c) => c.cancelJob(jobId, CALL_TIMEOUT_MS));
    if (opts.json) out(jobJson(job));
    else if (isTerminal(before.status)) out(`job ${job.id} had already finished (${statusName(job.status)}); nothing to cancel`);
    else out(statusLine(job));
    return EXIT.DONE;
  } finally {
    target.client.close();
  }
}

export interface ListOptions extends ConnectionOptions, OutputOptions {
  report?: string;
  limit?: string;
}

export async function listCommand(opts: ListOptions): Promise<number> {
  const limit = opts.limit === undefined ? 50 : Number(opts.limit);
  if (!Number.isSafeInteger(limit) || limit < 1) throw new CliError(`--limit: ${JSON.stringify(opts.limit)} is not a whole number ≥ 1`);
  const reportId = opts.report === undefined ? "" : checkId("--report", opts.report);
  const target = await connect(opts);
  try {
    const jobs: Job[] = [];
    let pageToken = "";
    do {
      const page = await call(target, (c) => c.listJobs({ reportId, pageSize: Math.min(1000, limit - jobs.length), pageToken }, CALL_TIMEOUT_MS));
      jobs.push(...page.jobs.slice(0, limit - jobs.length));
      pageToken = page.nextPageToken;
    } while (pageToken !== "" && jobs.length < limit);
    if (opts.json) jobs.forEach((j) => out(jobJson(j)));
    else if (jobs.length === 0) out(reportId ? `no jobs for report ${reportId}` : "no jobs");
    else jobTable(jobs).forEach(out);
    return EXIT.DONE;
  } finally {
    target.client.close();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
