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
  let ended = false;
  let failure: { err: unknown } | undefined;
  let pulling: ((result: IteratorResult<T>) => void) | undefined;
  let rejectPull: ((err: unknown) => void) | undefined;
  let subscription: Subscription | undefined;

  const stop = () => {
    ended = true;
    subscription?.unsubscribe();
    signal.removeEventListener("abort", finish);
  };
  /** Ends the iteration now, dropping what waits (the call is over or the consumer left). */
  function finish(): void {
    waiting.length = 0;
    stop();
    settle();
  }
  /** Hands the consumer that waits what there is for it. */
  const settle = () => {
    if (!pulling) return;
    const resolve = pulling;
    const reject = rejectPull!;
    if (waiting.length > 0) {
      pulling = rejectPull = undefined;
      resolve({ value: take(), done: false });
    } else if (failure) {
      const { err } = failure;
      pulling = rejectPull = undefined;
      failure = undefined;
      reject(err);
    } else if (ended) {
      pulling = rejectPull = undefined;
      resolve({ value: undefined, done: true });
    }
  };
  const take = (): T => waiting.shift()!;

  if (signal.aborted) ended = true;
  else {
    signal.addEventListener("abort", finish);
    subscription = source.subscribe({
      next: (value) => {
        if (ended) return;
        const last = waiting[waiting.length - 1];
        if (last !== undefined && opts.replaces?.(last, value)) waiting[waiting.length - 1] = value;
        else waiting.push(value);
        // Nothing after the last value matters: unsubscribe now, the waiting values still go out.
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
    // The source may have completed while subscribing (before `subscription` was set).
    if (ended) subscription.unsubscribe();
  }

  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      if (waiting.length > 0) return Promise.resolve({ value: take(), done: false });
      if (failure) {
        const { err } = failure;
        failure = undefined;
        return Promise.reject(err);
      }
      if (ended) return Promise.resolve({ value: undefined, done: true });
      return new Promise<IteratorResult<T>>((resolve, reject) => {
        pulling = resolve;
        rejectPull = reject;
      });
    },
    return() {
      finish();
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
