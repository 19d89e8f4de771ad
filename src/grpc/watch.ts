// An Observable as the AsyncIterable a streaming handler returns, for one
// client. The bridge pulls the next value only while the client's stream has
// room (bridge.ts, writeAll), so what arrives meanwhile waits here, where a
// value may replace the newest waiting one (WatchJob: a progress-only state
// replaces the previous state of the same status; a status change is always
// kept, so none is ever skipped). Ending the iteration, or the call's signal,
// unsubscribes.
import type { Observable, Subscription } from "rxjs";
import { isTerminal, type JobSnapshot } from "../jobs/job.js";

export interface IterateOptions<T> {
  /** Whether `next` may take the place of `waiting`, the newest value not yet pulled. */
  replaces?: (waiting: T, next: T) => boolean;
  /** Whether the iteration ends right after `value`. */
  isLast?: (value: T) => boolean;
}

export function iterate<T>(source: Observable<T>, signal: AbortSignal, opts: IterateOptions<T> = {}): AsyncIterableIterator<T> {
  const waiting: T[] = [];
  /** No more values will come (the source ended, the last value came, or the iteration was ended). */
  let ended = signal.aborted;
  let failure: { err: unknown } | undefined;
  /** The consumer's pending `next()`, while nothing was there for it. */
  let pull: { resolve: (result: IteratorResult<T>) => void; reject: (err: unknown) => void } | undefined;
  let subscription: Subscription | undefined;

  /** What `next()` answers now; undefined: nothing yet. */
  const ready = (): Promise<IteratorResult<T>> | undefined => {
    if (waiting.length > 0) return Promise.resolve({ value: waiting.shift()!, done: false });
    if (failure) {
      const { err } = failure;
      failure = undefined;
      return Promise.reject(err);
    }
    if (ended) return Promise.resolve({ value: undefined, done: true });
    return undefined;
  };
  const settle = () => {
    const answer = pull && ready();
    if (!pull || !answer) return;
    const { resolve, reject } = pull;
    pull = undefined;
    answer.then(resolve, reject);
  };
  // The abort listener stays on the signal: the signal is the call's own and goes with it, and
  // taking the listener off costs each of a job's thousands of watchers, all at the same moment.
  const stop = () => {
    ended = true;
    subscription?.unsubscribe();
  };
  /** Ends the iteration now, dropping what waits: the call is over or the consumer left. */
  const end = () => {
    waiting.length = 0;
    stop();
    settle();
  };

  if (!ended) {
    signal.addEventListener("abort", end);
    subscription = source.subscribe({
      next: (value) => {
        if (ended) return;
        const last = waiting[waiting.length - 1];
        if (last !== undefined && opts.replaces?.(last, value)) waiting[waiting.length - 1] = value;
        else waiting.push(value);
        // Nothing after the last value matters: unsubscribe now; what waits still goes out.
        if (opts.isLast?.(value)) stop();
        settle();
      },
      error: (err: unknown) => {
        failure = { err };
        stop();
        settle();
      },
      complete: () => {
        stop();
        settle();
      },
    });
    // The source may have ended while subscribing, before `subscription` was set.
    if (ended) subscription.unsubscribe();
  }

  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next: () => ready() ?? new Promise<IteratorResult<T>>((resolve, reject) => (pull = { resolve, reject })),
    return: () => {
      end();
      return Promise.resolve({ value: undefined, done: true });
    },
  };
}

/**
 * A job's states for one watcher: while it is slow, progress-only states are merged (the newest
 * wins) and status changes queue; it ends right after the terminal state.
 */
export function jobStates(states: Observable<JobSnapshot>, signal: AbortSignal): AsyncIterableIterator<JobSnapshot> {
  return iterate(states, signal, {
    replaces: (waiting, next) => waiting.status === next.status,
    isLast: (s) => isTerminal(s.status),
  });
}
