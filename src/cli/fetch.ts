// `chjob fetch <id>`: downloads a DONE job's result through its result_url (a presigned GET,
// so no S3 credentials here), with a progress line on a terminal. The bytes are written as the
// object holds them (a .csv.gz stays compressed), to a temporary file renamed at the end, so a
// broken download leaves no partial file behind.
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, renameSync, rmSync, type WriteStream } from "node:fs";
import { get as httpGet, type IncomingMessage } from "node:http";
import { get as httpsGet } from "node:https";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { JobStatus, type Job } from "../../gen/chjob/v1/job_service_pb.js";
import { CALL_TIMEOUT_MS, call, CliError, connect, EXIT, type ConnectionOptions } from "./connection.js";
import { downloadLine, formatBytes, formatCount, oneLine, statusName } from "./format.js";

export interface FetchOptions extends ConnectionOptions {
  output?: string;
  force?: boolean;
}

/** No byte for this long: the download is given up. */
const IDLE_TIMEOUT_MS = 30_000;

export async function fetchCommand(jobId: string, opts: FetchOptions): Promise<number> {
  const target = await connect(opts);
  let job: Job;
  try {
    job = await call(target, (c) => c.getJob(jobId, CALL_TIMEOUT_MS));
  } finally {
    target.client.close();
  }
  checkFetchable(job);

  const toStdout = opts.output === "-";
  const file = toStdout ? undefined : resolve(opts.output ?? defaultName(job));
  if (file !== undefined && existsSync(file) && !opts.force) {
    throw new CliError(`${opts.output ?? basename(file)} exists; pass --force to overwrite it, or -o to write elsewhere`);
  }
  // Beside the file, so that the rename at the end stays on one file system.
  const part = file && join(dirname(file), `.${basename(file)}.${randomBytes(4).toString("hex")}.part`);
  let sink: WriteStream | NodeJS.WriteStream;
  if (part) {
    sink = createWriteStream(part, { flags: "wx" });
    await new Promise<void>((ok, fail) => (sink as WriteStream).once("open", () => ok()).once("error", (err) => fail(writeError(file!, err))));
  } else {
    sink = process.stdout;
  }

  const progress = process.stderr.isTTY ? new ProgressLine(process.stderr) : undefined;
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once("SIGINT", onSigint);
  try {
    const size = await download(job, sink, abort.signal, progress);
    progress?.stop();
    if (part) {
      await closed(sink as WriteStream);
      if (!opts.force && existsSync(file!)) throw new CliError(`${opts.output ?? basename(file!)} appeared while the result was downloading; pass --force to overwrite it`);
      renameSync(part, file!);
      const shown = relative(process.cwd(), file!);
      process.stdout.write(`job ${job.id}: wrote ${shown.startsWith("..") || isAbsolute(shown) ? file : shown} (${formatBytes(size)}, ${formatCount(size)} bytes)\n`);
    }
    return EXIT.DONE;
  } catch (err) {
    if (abort.signal.aborted) {
      progress?.stop();
      process.stderr.write(`chjob: stopped fetching job ${job.id}${part ? "; nothing was written" : ""}\n`);
      return EXIT.INTERRUPTED;
    }
    throw err;
  } finally {
    process.off("SIGINT", onSigint);
    progress?.stop();
    if (part) {
      (sink as WriteStream).destroy();
      rmSync(part, { force: true });
    }
  }
}

/** DONE with a result_url; anything else says why there is nothing to fetch. */
function checkFetchable(job: Job): void {
  const id = job.id;
  if (job.status === JobStatus.FAILED) throw new CliError(`job ${id} failed, so it has no result: ${oneLine(job.error)}`, EXIT.FAILED);
  if (job.status === JobStatus.CANCELLED) {
    throw new CliError(`job ${id} was cancelled, so it has no result${job.error ? ` (${oneLine(job.error)})` : ""}`, EXIT.FAILED);
  }
  if (job.status !== JobStatus.DONE) {
    throw new CliError(`job ${id} is ${statusName(job.status)}: its result is not there yet (\`npx chjob watch ${id}\` waits for it to end)`);
  }
  if (job.resultUrl === "") {
    throw new CliError(
      `job ${id} has no result_url: the service signs download URLs only when CHJOB_PRESIGN_TTL is set (e.g. CHJOB_PRESIGN_TTL=15m; restart it with that). ` +
        `Meanwhile an S3 client with credentials reads ${job.resultUri}`,
    );
  }
}

/** `<job id>.<ext>`: the result object's own name (`<job id>.csv`, `.parquet`, `.jsonl.zst`, …). */
function defaultName(job: Job): string {
  const key = /^s3:\/\/[^/]+\/(.+)$/.exec(job.resultUri)?.[1];
  const name = key ? basename(key) : "";
  return name.startsWith(job.id) ? name : `${job.id}.result`;
}

/** GETs result_url into `sink`; resolves with the bytes written. */
function download(job: Job, sink: NodeJS.WritableStream, signal: AbortSignal, progress: ProgressLine | undefined): Promise<number> {
  const url = new URL(job.resultUrl);
  const failed = (why: string) => new CliError(`could not fetch the result of job ${job.id} from ${url.origin}: ${why}`, EXIT.FAILED);
  return new Promise<number>((resolveSize, reject) => {
    const get = url.protocol === "https:" ? httpsGet : httpGet;
    // No Accept-Encoding: the object comes as it is stored (a .gz stays gzip).
    const req = get(url, { signal }, (res) => {
      if (res.statusCode !== 200) {
        readError(res).then((why) => reject(failed(`S3 answered ${res.statusCode} ${why}`)), reject);
        return;
      }
      const total = res.headers["content-length"] === undefined ? undefined : Number(res.headers["content-length"]);
      let received = 0;
      progress?.start(total);
      res.on("data", (chunk: Buffer) => {
        received += chunk.length;
        progress?.update(received);
        if (!sink.write(chunk)) {
          res.pause();
          sink.once("drain", () => res.resume());
        }
      });
      res.on("end", () => {
        if (!res.complete || (total !== undefined && received !== total)) {
          reject(failed(`the download broke off after ${formatCount(received)} of ${total === undefined ? "?" : formatCount(total)} bytes; try again`));
        } else resolveSize(received);
      });
      res.on("error", (err) => reject(failed(err.message)));
    });
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new Error(`no data for ${IDLE_TIMEOUT_MS / 1000} s`)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (signal.aborted) return reject(err);
      const hint = err.code === "ECONNREFUSED" || err.code === "ENOTFOUND" || err.code === "EAI_AGAIN" ? ` (is ${url.origin} reachable from here? The service's CHJOB_PUBLIC_S3_ENDPOINT sets the address in result_url)` : "";
      reject(failed(`${err.code ? `${err.code}: ` : ""}${err.message}${hint}`));
    });
    sink.on("error", (err: Error) => {
      req.destroy();
      reject(new CliError(`cannot write the result: ${err.message}`));
    });
  });
}

/** S3's XML error as `<Code>: <Message>`. */
async function readError(res: IncomingMessage): Promise<string> {
  let body = "";
  res.setEncoding("utf8");
  for await (const chunk of res) {
    if (body.length < 65_536) body += chunk;
  }
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  if (code === "AccessDenied" && /expired/i.test(message ?? "")) return `${code}: ${message} (the result_url outlived CHJOB_PRESIGN_TTL; fetch again for a fresh one)`;
  return code ? `${code}${message ? `: ${message}` : ""}` : oneLine(body.slice(0, 200)) || (res.statusMessage ?? "");
}

function closed(stream: WriteStream): Promise<void> {
  return new Promise((ok, fail) => {
    stream.once("error", fail);
    stream.end(() => ok());
  });
}

function writeError(file: string, err: NodeJS.ErrnoException): CliError {
  return new CliError(`cannot write ${file}: ${err.code ?? err.message}`);
}

/** One line redrawn in place on stderr (stdout may be the data: `-o -`). */
class ProgressLine {
  private received = 0;
  private total: number | undefined;
  private started = 0;
  private tick = 0;
  private timer: NodeJS.Timeout | undefined;
  private drawn = false;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  start(total: number | undefined): void {
    this.total = total;
    this.started = Date.now();
    this.draw();
    this.timer = setInterval(() => this.draw(), 100);
  }

  update(received: number): void {
    this.received = received;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.drawn) this.stream.write("\r\x1b[2K");
    this.drawn = false;
  }

  private draw(): void {
    this.tick++;
    this.stream.write(`\r\x1b[2K${downloadLine(this.received, this.total, Date.now() - this.started, this.tick, this.stream.columns || 80)}`);
    this.drawn = true;
  }
}
