// The ClickHouse seam: what the job runner needs from an engine. One
// implementation over @clickhouse/client serves both a ClickHouse server (HTTP)
// and the embedded chDB (its Connection plugged into the same client).
import type { ClickHouseClient, ClickHouseSettings } from "@clickhouse/client";
import { quoteString } from "./sql-text.js";

/** How to find one running export in system.processes. */
export interface ExportRef {
  jobId: string;
  /** The export URL: unique among active jobs (one per report/query pair). */
  url: string;
}

export interface ExportFigures {
  /** Rows written by the export, when the engine reports them. */
  writtenRows: number | undefined;
  /** Bytes read by the export query, when the engine reports them. */
  readBytes: number | undefined;
  /** Bytes written to the export object (its size), when measured: the copy then needs no HeadObject. */
  objectBytes?: number;
}

/** An export that has ended. */
export interface ExportEnded {
  /**
   * Its figures. On chDB they take one more read of ClickHouse's counters after
   * the export, which the caller can let run while it copies the result.
   */
  figures: Promise<ExportFigures>;
}

export const NO_FIGURES: ExportFigures = { writtenRows: undefined, readBytes: undefined };

/**
 * chDB's process-wide counters of what exports do: rows inserted, bytes read, and bytes written
 * through its S3 write buffer, which is the export object's size, compressed or in parts alike
 * (checked against HeadObject for every format and compression; docs/engines.md).
 */
const COUNTERS_SQL =
  "SELECT sumIf(value, event = 'InsertedRows') AS rows, sumIf(value, event = 'SelectedBytes') AS bytes, sumIf(value, event = 'WriteBufferFromS3Bytes') AS s3_bytes FROM system.events";

interface CounterRow {
  rows: string | number;
  bytes: string | number;
  s3_bytes: string | number;
}

interface Counters {
  rows: number;
  bytes: number;
  s3Bytes: number;
}

function countersOf([row]: CounterRow[]): Counters {
  return { rows: Number(row?.rows ?? 0), bytes: Number(row?.bytes ?? 0), s3Bytes: Number(row?.s3_bytes ?? 0) };
}

export interface ProcessSample {
  rowsRead: number;
  bytesRead: number;
  totalRowsToRead: number;
  elapsedMs: number;
  writtenRows: number;
  writtenBytes: number;
}

export interface ClickHouseEngine {
  /** For logs: where ClickHouse is, with no credentials. */
  readonly description: string;
  ping(): Promise<void>;
  /**
   * Runs the export statement to completion; rejects with the engine's error. `headers` go with
   * the HTTP request (a W3C `traceparent`: a ClickHouse server joins the trace); chDB has no HTTP.
   */
  runExport(ref: ExportRef, sql: string, settings: ClickHouseSettings, headers?: Record<string, string>): Promise<ExportEnded>;
  /** Current figures of the given running exports, by job id (absent: not running). */
  sample(refs: ExportRef[]): Promise<Map<string, ProcessSample>>;
  /** Asks the server to stop the export; returns without waiting for it to stop. */
  kill(ref: ExportRef): Promise<void>;
  /** Runs a statement with no result (demo data, maintenance). */
  command(sql: string): Promise<void>;
  /** Runs a small query and returns its rows (64-bit integers as strings). */
  queryRows<T>(sql: string): Promise<T[]>;
  close(): Promise<void>;
}

/** How a kind of engine names one export in system.processes. */
export interface ProcessMatcher {
  /** SQL condition over system.processes selecting the export. */
  where(ref: ExportRef): string;
  /** SQL expression over system.processes whose value `key(ref)` identifies the export in a sample. */
  readonly keyColumn: string;
  key(ref: ExportRef): string;
}

/** On a ClickHouse server the export's query_id is the job id. */
export const byQueryId: ProcessMatcher = {
  where: (ref) => `query_id = ${quoteString(ref.jobId)}`,
  keyColumn: "query_id",
  key: (ref) => ref.jobId,
};

/** chDB assigns its own query ids: find the export by its unique URL. */
export const byExportUrl: ProcessMatcher = {
  where: (ref) => `startsWith(query, 'INSERT INTO FUNCTION s3(') AND position(query, ${quoteString(ref.url)}) > 0`,
  // The URL is the first s3() argument: the query's head holds it.
  keyColumn: "extract(query, '^INSERT INTO FUNCTION s3\\\\(\\'([^\\']*)\\'')",
  key: (ref) => ref.url,
};

export interface ClientEngineOptions {
  description: string;
  /** Whether an export's figures come from the server's X-ClickHouse-Summary (true) or from chDB's counters (false). */
  exactSummary: boolean;
  /** Clients that run exports; one is taken per export and given back after. */
  exportClients: ClickHouseClient[];
  /** Whether the export clients can each run many exports at once (HTTP) or one (chDB session). */
  sharedExportClients: boolean;
  /** Client for pings, samples, kills and commands: never busy with an export. */
  controlClient: ClickHouseClient;
  matcher: ProcessMatcher;
  /** Settings that every export carries (e.g. wait_end_of_query on HTTP). */
  exportSettings: ClickHouseSettings;
  /**
   * Whether a setting an export sends stays on its client's session for the next (chDB applies
   * them with SET): then only the settings that differ from what that session last had are sent.
   */
  stickySettings: boolean;
  /** Releases what the engine holds beyond the clients. */
  onClose?: () => Promise<void> | void;
}

export class ClientEngine implements ClickHouseEngine {
  readonly description: string;
  private readonly idle: ClickHouseClient[];
  private readonly waiting: Array<(client: ClickHouseClient) => void> = [];

  constructor(private readonly opts: ClientEngineOptions) {
    this.description = opts.description;
    this.idle = [...opts.exportClients];
  }

  async ping(): Promise<void> {
    // SELECT 1 rather than /ping: /ping answers without checking credentials.
    const result = await this.opts.controlClient.ping({ select: true });
    if (!result.success) throw result.error;
  }

  async runExport(ref: ExportRef, sql: string, settings: ClickHouseSettings, headers?: Record<string, string>): Promise<ExportEnded> {
    const client = await this.acquire();
    const alone = this.running === 0;
    const epoch = ++this.exportsStarted;
    this.running++;
    const wanted: ClickHouseSettings = { ...this.opts.exportSettings, ...settings };
    const settingsToSend = this.opts.stickySettings ? this.changedSettings(client, wanted) : wanted;
    try {
      const before = this.opts.exactSummary || !alone ? undefined : await this.countersBefore(epoch);
      const { summary } = await client.command({
        query: sql,
        query_id: ref.jobId,
        clickhouse_settings: settingsToSend,
        ...(headers && Object.keys(headers).length > 0 ? { http_headers: headers } : {}),
      });
      if (this.opts.stickySettings) this.sessionSettings.set(client, wanted);
      if (this.opts.exactSummary) {
        // Current servers send X-ClickHouse-Summary; old ones (18.x) send none.
        const writtenRows = Number(summary?.written_rows ?? NaN);
        const readBytes = Number(summary?.read_bytes ?? NaN);
        const figures = { writtenRows: Number.isFinite(writtenRows) ? writtenRows : undefined, readBytes: Number.isFinite(readBytes) ? readBytes : undefined };
        return { figures: Promise.resolve(figures) };
      }
      // chDB reports no summary. Its process-wide counters are exact for an export that ran alone
      // (none other started or running meanwhile). The closing read is not awaited here: the
      // caller starts the copy beside it.
      return { figures: before ? this.countersAfter(epoch, before) : Promise.resolve(NO_FIGURES) };
    } catch (err) {
      // Some of the SETs may have run: send them all next time.
      this.sessionSettings.delete(client);
      throw err;
    } finally {
      this.running--;
      this.release(client);
    }
  }

  /** With sticky settings: what each export client's session has now, as its last export left it. */
  private readonly sessionSettings = new Map<ClickHouseClient, ClickHouseSettings>();

  /** The settings of `wanted` that the client's session does not have yet (one SET costs chDB about 0.1 ms of CPU). */
  private changedSettings(client: ClickHouseClient, wanted: ClickHouseSettings): ClickHouseSettings {
    const has = this.sessionSettings.get(client);
    if (!has) return wanted;
    const changed: ClickHouseSettings = {};
    for (const [name, value] of Object.entries(wanted)) {
      const key = name as keyof ClickHouseSettings;
      if (value !== undefined && String(value) !== String(has[key])) (changed as Record<string, unknown>)[name] = value;
    }
    return changed;
  }

  private running = 0;
  private exportsStarted = 0;
  /** The counters read right after export `epoch` ended (it ran alone). */
  private counters: (Counters & { epoch: number }) | undefined;

  /**
   * The counters as export `epoch` starts alone. When the previous export's
   * closing read is the last thing that moved them (no export started since,
   * no command ran), it serves: no chDB query of its own.
   */
  private async countersBefore(epoch: number): Promise<Counters | undefined> {
    const last = this.counters;
    if (last && last.epoch === epoch - 1) return last;
    return this.readCounters();
  }

  private async countersAfter(epoch: number, before: Counters): Promise<ExportFigures> {
    if (epoch !== this.exportsStarted) return NO_FIGURES;
    const after = await this.readCounters();
    if (!after || epoch !== this.exportsStarted) return NO_FIGURES;
    this.counters = { epoch, ...after };
    return { writtenRows: after.rows - before.rows, readBytes: after.bytes - before.bytes, objectBytes: after.s3Bytes - before.s3Bytes };
  }

  /** chDB's counters now; undefined when the read fails (the export then has no figures). */
  private readCounters(): Promise<Counters | undefined> {
    return this.queryRows<CounterRow>(COUNTERS_SQL).then(countersOf, () => undefined);
  }

  async sample(refs: ExportRef[]): Promise<Map<string, ProcessSample>> {
    const samples = new Map<string, ProcessSample>();
    if (refs.length === 0) return samples;
    const { matcher } = this.opts;
    const byKey = new Map(refs.map((r) => [matcher.key(r), r.jobId]));
    const rs = await this.opts.controlClient.query({
      query: `SELECT ${matcher.keyColumn} AS key, read_rows, read_bytes, total_rows_approx, elapsed, written_rows, written_bytes
        FROM system.processes WHERE ${refs.map((r) => `(${matcher.where(r)})`).join(" OR ")}`,
      format: "JSONEachRow",
    });
    const rows = await rs.json<{ key: string; read_rows: string | number; read_bytes: string | number; total_rows_approx: string | number; elapsed: number; written_rows: string | number; written_bytes: string | number }>();
    for (const row of rows) {
      const jobId = byKey.get(row.key);
      if (!jobId) continue;
      samples.set(jobId, {
        rowsRead: Number(row.read_rows),
        bytesRead: Number(row.read_bytes),
        totalRowsToRead: Number(row.total_rows_approx),
        elapsedMs: Math.round(Number(row.elapsed) * 1000),
        writtenRows: Number(row.written_rows),
        writtenBytes: Number(row.written_bytes),
      });
    }
    return samples;
  }

  async kill(ref: ExportRef): Promise<void> {
    // ASYNC: SYNC can block for seconds after the query has stopped; the
    // runner waits for the export's own promise instead.
    await this.opts.controlClient.command({ query: `KILL QUERY WHERE ${this.opts.matcher.where(ref)} ASYNC` });
  }

  async command(sql: string): Promise<void> {
    this.counters = undefined; // it may insert rows
    await this.opts.controlClient.command({ query: sql });
  }

  async queryRows<T>(sql: string): Promise<T[]> {
    const rs = await this.opts.controlClient.query({ query: sql, format: "JSONEachRow", clickhouse_settings: { output_format_json_quote_64bit_integers: 1 } });
    return rs.json<T>();
  }

  async close(): Promise<void> {
    const clients = new Set([...this.opts.exportClients, this.opts.controlClient]);
    await Promise.allSettled([...clients].map((c) => c.close()));
    await this.opts.onClose?.();
  }

  private acquire(): Promise<ClickHouseClient> {
    if (this.opts.sharedExportClients) return Promise.resolve(this.opts.exportClients[0]!);
    const client = this.idle.pop();
    if (client) return Promise.resolve(client);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(client: ClickHouseClient): void {
    if (this.opts.sharedExportClients) return;
    const next = this.waiting.shift();
    if (next) next(client);
    else this.idle.push(client);
  }
}

export interface ServerError {
  code: number;
  /** ClickHouse's error name (SYNTAX_ERROR, ...) when the server says it; old servers do not. */
  type: string | undefined;
  message: string;
}

/**
 * ClickHouse's code, name and message from what @clickhouse/client throws: it
 * parses current servers' `Code: 62. DB::Exception: ... (SYNTAX_ERROR)` itself;
 * older ones (18.x) answer `Code: 62, e.displayText() = DB::Exception: ..., e.what() = DB::Exception`.
 */
export function serverError(err: unknown): ServerError | undefined {
  if (!(err instanceof Error)) return undefined;
  const { code, type } = err as Error & { code?: unknown; type?: unknown };
  if (typeof code === "string" && /^\d+$/.test(code)) {
    return { code: Number(code), type: typeof type === "string" && /^[A-Z][A-Z0-9_]+$/.test(type) ? type : undefined, message: err.message.trim() };
  }
  const old = /^Code: (\d+), e\.displayText\(\) = (?:DB::Exception: )?([\s\S]*?)(?:, e\.what\(\) = \S+)?\s*$/.exec(err.message);
  return old ? { code: Number(old[1]), type: undefined, message: old[2]!.trim() } : undefined;
}

/** "ClickHouse error 62 (SYNTAX_ERROR): ..." from what @clickhouse/client throws. */
export function describeClickHouseError(err: unknown): string {
  const server = serverError(err);
  if (server) return `ClickHouse error ${server.code}${server.type ? ` (${server.type})` : ""}: ${server.message}`;
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("E")) return `ClickHouse is unreachable: ${err.message} (${code})`;
    return `ClickHouse: ${err.message}`;
  }
  return `ClickHouse: ${String(err)}`;
}

/** ClickHouse's code for an error, when it is one of ClickHouse's. */
export function clickHouseCode(err: unknown): number | undefined {
  return serverError(err)?.code;
}

