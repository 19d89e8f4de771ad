// Streams a job's states to one watcher with grpc-js backpressure: while the
// stream is not draining, progress-only states are merged (the newest wins);
// status changes are always queued, so none is ever skipped.
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { Observable } from "rxjs";
import { isTerminal, type JobSnapshot } from "../jobs/job.js";

export function streamStates<Req, Res>(
  call: ServerWritableStream<Req, Res>,
  states: Observable<JobSnapshot>,
  toMessage: (s: JobSnapshot) => Res,
): void {
  const queue: JobSnapshot[] = [];
  let draining = true;
  let ended = false;

  const flush = () => {
    while (draining && queue.length > 0 && !ended) {
      const next = queue.shift()!;
      draining = call.write(toMessage(next));
      if (isTerminal(next.status)) {
        ended = true;
        call.end();
      }
    }
  };
  const sub = states.subscribe((state) => {
    const last = queue[queue.length - 1];
    // A queued state with the same status carries nothing the newer one lacks.
    if (last && last.status === state.status) queue[queue.length - 1] = state;
    else queue.push(state);
    flush();
  });
  call.on("drain", () => {
    draining = true;
    flush();
  });
  const leave = () => sub.unsubscribe();
  call.on("cancelled", leave);
  call.on("close", leave);
  call.on("error", leave);
}
