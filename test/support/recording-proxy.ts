// A pass-through proxy in front of an S3 server that notes every request (method, path, query,
// headers, body size), so a test sees the calls an S3 client made: which UploadPart or
// UploadPartCopy, with which part number, range and size. It forwards the Host header unchanged,
// so SigV4 signatures still match. It can hold answers back, and notes when each request was open,
// so a test sees how many a client had open at once.
import { createServer, request, type IncomingHttpHeaders } from "node:http";
import { performance } from "node:perf_hooks";
import { listenOnLoopback } from "./ports.js";

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Bytes of the body as sent (with aws-chunked framing, if any). */
  bodyBytes: number;
  /** performance.now() when the request arrived, and when its answer had been sent. */
  startedAt: number;
  endedAt: number;
}

/** What is known of a request when it arrives. */
export type RequestHead = Pick<RecordedRequest, "method" | "query" | "headers">;

export interface RecordingProxy {
  /** `http://127.0.0.1:<port>`: point the client here. */
  readonly endpoint: string;
  /** Every request so far, in arrival order (noted when its body has been read). */
  readonly requests: RecordedRequest[];
  close(): Promise<void>;
}

/** Size of an upload's payload: the decoded length of an aws-chunked body, else its Content-Length. */
export function payloadBytes(r: RecordedRequest): number {
  return Number(r.headers["x-amz-decoded-content-length"] ?? r.headers["content-length"] ?? r.bodyBytes);
}

/** The most requests that `which` picks that were open at one time (arrival to answer sent). */
export function mostAtOnce(requests: RecordedRequest[], which: (r: RecordedRequest) => boolean): number {
  const edges = requests.filter(which).flatMap((r) => [[r.startedAt, 1] as const, [r.endedAt, -1] as const]);
  // At equal times an answer ends before the next request counts.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (open += d));
  return most;
}

/** S3's UploadPart (PUT ?partNumber&uploadId, no copy source). */
export const isUploadPart = (r: RequestHead): boolean => r.method === "PUT" && r.query.has("partNumber") && r.query.has("uploadId") && !r.headers["x-amz-copy-source"];

/** S3's UploadPartCopy (UploadPart with x-amz-copy-source). */
export const isUploadPartCopy = (r: RequestHead): boolean => r.method === "PUT" && r.query.has("partNumber") && r.query.has("uploadId") && Boolean(r.headers["x-amz-copy-source"]);

/**
 * `holdMs`: how long to keep back the answer to a request (its method, query and headers; noted
 * times include the hold), e.g. to slow UploadParts down so that a client's concurrency shows.
 */
export async function startRecordingProxy(target: string, opts: { holdMs?: (r: RequestHead) => number } = {}): Promise<RecordingProxy> {
  const to = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const startedAt = performance.now();
    const url = new URL(req.url ?? "/", "http://proxy");
    const holdMs = opts.holdMs?.({ method: req.method ?? "", query: url.searchParams, headers: req.headers }) ?? 0;
    let bodyBytes = 0;
    req.on("data", (chunk: Buffer) => (bodyBytes += chunk.length));
    const noted = new Promise<RecordedRequest>((resolve) =>
      req.on("end", () => {
        const r = { method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers, bodyBytes, startedAt, endedAt: Number.NaN };
        requests.push(r);
        resolve(r);
      }),
    );
    res.on("finish", () => void noted.then((r) => (r.endedAt = performance.now())));
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      setTimeout(() => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      }, holdMs);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  const port = await listenOnLoopback(server);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
