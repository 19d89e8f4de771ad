// S3 servers a fault test can take away: a standalone s3rver in the test
// process (stop it, start it again on the same port and directory), and a
// proxy in front of one that goes away the moment it sees a CopyObject.
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedS3, type EmbeddedS3 } from "../../src/storage/embedded-s3.js";
import { freePort, listenOnLoopback } from "./ports.js";

export interface StandaloneS3 {
  /** `http://127.0.0.1:<port>` (the same after a restart). */
  readonly endpoint: string;
  readonly port: number;
  /** Where its objects live. */
  readonly dir: string;
  readonly running: boolean;
  /** Closes the server and every connection to it: clients then get ECONNREFUSED. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory (objects kept). */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  cleanup(): Promise<void>;
}

/** An S3 server with its own credentials and buckets, on a free loopback port. */
export async function startStandaloneS3(opts: { buckets: string[]; accessKeyId: string; secretAccessKey: string }): Promise<StandaloneS3> {
  const dir = mkdtempSync(join(tmpdir(), "chjob-fault-s3-"));
  const base = { host: "127.0.0.1", directory: dir, buckets: opts.buckets, accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey };
  let server: EmbeddedS3 | undefined = await startEmbeddedS3({ ...base, port: 0 });
  const endpoint = server.endpoint;
  const port = Number(new URL(endpoint).port);
  const stop = async () => {
    const s = server;
    server = undefined;
    await s?.close();
  };
  return {
    endpoint,
    port,
    dir,
    get running() {
      return server !== undefined;
    },
    stop,
    async start() {
      if (server) return;
      server = await startEmbeddedS3({ ...base, port });
    },
    async cleanup() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface CopyCutProxy {
  /** `http://127.0.0.1:<port>`: point AWS_ENDPOINT here. */
  readonly endpoint: string;
  /** Resolves when the first CopyObject arrived (and was dropped or left hanging). */
  readonly cut: Promise<void>;
  /** Listens again on the same port (and forwards everything, copies included). */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Forwards every request to `target` unchanged (the Host header too, so SigV4
 * signatures still match) until a CopyObject arrives. "cut": it drops that
 * request and every connection and stops listening, as if S3 went away
 * between the export and the copy. "hang": it never answers that CopyObject
 * (and forwards everything after it).
 */
export async function startCopyCutProxy(target: string, mode: "cut" | "hang" = "cut"): Promise<CopyCutProxy> {
  const to = new URL(target);
  let cutting = true;
  let onCut!: () => void;
  const cut = new Promise<void>((r) => (onCut = r));
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (cutting && req.headers["x-amz-copy-source"]) {
      cutting = false;
      onCut();
      if (mode === "hang") {
        // Read the request, never answer: S3 that accepts and goes silent.
        req.resume();
        return;
      }
      req.socket.destroy();
      server.close();
      server.closeAllConnections();
      return;
    }
    const upstream = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  };
  let server: Server = createServer(handler);
  const port = await listenOnLoopback(server);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    cut,
    async reopen() {
      server = createServer(handler);
      await listenOnLoopback(server, port);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A loopback port nothing listens on (it was free a moment ago). */
export const closedPort = freePort;
