// A pass-through proxy in front of an S3 server that notes every request (method, path, query,
// headers, body size), so a test sees the calls an S3 client made: which UploadPart or
// UploadPartCopy, with which part number, range and size. It forwards the Host header unchanged,
// so SigV4 signatures still match.
import { createServer, request, type IncomingHttpHeaders } from "node:http";
import { listenOnLoopback } from "./ports.js";

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Bytes of the body as sent (with aws-chunked framing, if any). */
  bodyBytes: number;
}

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

/** S3's UploadPart (PUT ?partNumber&uploadId, no copy source). */
export const isUploadPart = (r: RecordedRequest): boolean => r.method === "PUT" && r.query.has("partNumber") && r.query.has("uploadId") && !r.headers["x-amz-copy-source"];

/** S3's UploadPartCopy (UploadPart with x-amz-copy-source). */
export const isUploadPartCopy = (r: RecordedRequest): boolean => r.method === "PUT" && r.query.has("partNumber") && r.query.has("uploadId") && Boolean(r.headers["x-amz-copy-source"]);

export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const to = new URL(target);
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://proxy");
    let bodyBytes = 0;
    req.on("data", (chunk: Buffer) => (bodyBytes += chunk.length));
    req.on("end", () => requests.push({ method: req.method ?? "", path: url.pathname, query: url.searchParams, headers: req.headers, bodyBytes }));
    const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
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
