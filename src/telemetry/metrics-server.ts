// The Prometheus endpoint: GET /metrics on CHJOB_METRICS_ADDRESS, plain node:http.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigurationConflictError } from "../errors.js";
import type { Logger } from "../log.js";

export interface MetricsServer {
  /** host:port actually bound (port 0 resolved). */
  address: string;
  close(): Promise<void>;
}

export async function startMetricsServer(
  address: string,
  scrape: () => Promise<{ text: string; contentType: string }>,
  log: Logger,
): Promise<MetricsServer> {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(at + 1));
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found: the metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("GET /metrics\n");
      return;
    }
    scrape().then(
      ({ text, contentType }) => res.writeHead(200, { "content-type": contentType }).end(req.method === "HEAD" ? undefined : text),
      (err: unknown) => {
        log.warn({ err: String(err) }, "metrics: scrape failed");
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("the metrics could not be collected; see the service's log\n");
      },
    );
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus's idle connections
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const reason = err.code === "EADDRINUSE" ? "the port is in use; set CHJOB_METRICS_ADDRESS to a free address (port 0 picks one)" : err.message;
      reject(new ConfigurationConflictError(`CHJOB_METRICS_ADDRESS: cannot listen on ${address}: ${reason}`));
    });
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    address: `${address.slice(0, at)}:${bound}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
