// The embedded S3 server's thread (src/storage/embedded-s3-thread.ts starts it):
// s3rver handles every request of the exports and copies, and here that work
// runs beside the service's event loop instead of queueing on it.
import { parentPort, workerData } from "node:worker_threads";
import { ConfigurationConflictError } from "../errors.js";
import { startEmbeddedS3, type EmbeddedS3Options } from "./embedded-s3.js";

const port = parentPort!;
try {
  const server = await startEmbeddedS3(workerData as EmbeddedS3Options);
  port.on("message", (message: unknown) => {
    if (message !== "close") return;
    void server.close().finally(() => {
      port.postMessage({ closed: true });
      port.close();
    });
  });
  port.postMessage({ endpoint: server.endpoint });
} catch (err) {
  port.postMessage({ error: (err as Error).message ?? String(err), conflict: err instanceof ConfigurationConflictError });
  port.close();
}
