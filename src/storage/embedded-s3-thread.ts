// The embedded S3 server in a worker thread of its own. It serves ClickHouse's
// uploads and the service's copies over HTTP on loopback, so nothing but its
// address crosses the thread; its request handling (signature checks, XML,
// file I/O) then runs on the second core instead of queueing behind gRPC, the
// job store and the job runner on the event loop.
import { Worker } from "node:worker_threads";
import { ConfigurationConflictError } from "../errors.js";
import type { EmbeddedS3, EmbeddedS3Options } from "./embedded-s3.js";

type Answer = { endpoint: string } | { error: string; conflict: boolean } | { closed: true };

/** Starts the embedded S3 server on a thread of its own; `onCrash`: the thread died while serving. */
export function startEmbeddedS3Thread(opts: EmbeddedS3Options, onCrash: (err: Error) => void): Promise<EmbeddedS3> {
  const worker = new Worker(new URL("./embedded-s3-worker.js", import.meta.url), { workerData: opts });
  let closing = false;
  return new Promise<EmbeddedS3>((resolve, reject) => {
    let started = false;
    const fail = (err: Error) => {
      if (!started) reject(err);
      else if (!closing) onCrash(err);
    };
    worker.once("error", fail);
    worker.once("exit", (code) => fail(new Error(`the embedded S3 server's thread stopped (exit code ${code})`)));
    worker.once("message", (answer: Answer) => {
      if ("error" in answer) {
        reject(answer.conflict ? new ConfigurationConflictError(answer.error) : new Error(answer.error));
        return;
      }
      if (!("endpoint" in answer)) return;
      started = true;
      resolve({
        endpoint: answer.endpoint,
        close: async () => {
          if (closing) return;
          closing = true;
          const closed = new Promise<void>((done) => worker.once("exit", () => done()));
          worker.postMessage("close");
          // s3rver closes its keep-alive sockets itself; the thread ends when it has.
          const timer = setTimeout(() => void worker.terminate(), 5000);
          await closed;
          clearTimeout(timer);
        },
      });
    });
  });
}
