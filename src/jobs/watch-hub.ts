// WatchJob's source: one RxJS subject per watched job holding its newest
// committed state, fed by the store's `changes`. A state reaches a watcher only
// after the store committed it.
//
// The subject has one subscriber, which passes each state to the job's watchers,
// kept in a Set: a job may have thousands of watchers on a replica, all ending at
// its terminal state at once, and a subject removes each subscriber from an array
// (O(n) each, O(n²) for them all) through a chain of operators per watcher.
import { BehaviorSubject, Observable, of, type Subscriber, type Subscription } from "rxjs";
import type { JobStore } from "../store/job-store.js";
import { isTerminal, JobStatus, type JobSnapshot } from "./job.js";

interface Watched {
  /** Holds the newest state passed on; set once the first read is in (states committed before that are kept in `early`). */
  subject: BehaviorSubject<JobSnapshot> | undefined;
  early: JobSnapshot | undefined;
  ready: Promise<boolean>;
  /** The terminal state was passed on (or the hub closed): no more states. */
  ended: boolean;
  watchers: Set<Subscriber<JobSnapshot>>;
  /** Stops other replicas' writes of this job reaching `changes`. */
  unfollow: () => void;
  /** States go to the subject one after another (a gap is filled from the store first). */
  queue: Promise<void>;
}

export class JobWatchHub {
  private readonly watched = new Map<string, Watched>();
  private readonly subscription: Subscription;

  constructor(private readonly store: JobStore) {
    this.subscription = store.changes.subscribe((s) => this.onState(s));
  }

  /** How many jobs have watchers now. */
  get size(): number {
    return this.watched.size;
  }

  /** The job's current state at once, then every later one, ending after a terminal state; undefined for no such job. */
  async watch(id: string): Promise<Observable<JobSnapshot> | undefined> {
    let w = this.watched.get(id);
    if (!w) {
      // Registered before the read, so that no state committed meanwhile is lost.
      const entry: Watched = {
        subject: undefined,
        early: undefined,
        ready: Promise.resolve(false),
        ended: false,
        watchers: new Set(),
        unfollow: this.store.follow(id),
        queue: Promise.resolve(),
      };
      entry.ready = this.load(id, entry);
      this.watched.set(id, (w = entry));
    }
    const found = await w.ready;
    if (!found || !w.subject) return undefined;
    if (w.ended) return of(w.subject.value);
    const entry = w;
    const subject = w.subject;
    return new Observable<JobSnapshot>((subscriber) => {
      // As subscribing to the subject would: the newest state at once, then every later one.
      subscriber.next(subject.value);
      if (entry.ended) {
        subscriber.complete();
        return;
      }
      entry.watchers.add(subscriber);
      return () => {
        if (entry.watchers.delete(subscriber) && entry.watchers.size === 0 && !entry.ended && this.watched.get(id) === entry) this.forget(id, entry);
      };
    });
  }

  close(): void {
    this.subscription.unsubscribe();
    for (const w of this.watched.values()) {
      w.unfollow();
      this.finish(w);
    }
    this.watched.clear();
  }

  private async load(id: string, w: Watched): Promise<boolean> {
    let read: JobSnapshot | undefined;
    try {
      read = await this.store.get(id);
    } catch (err) {
      this.forget(id, w);
      throw err;
    }
    const first = newer(read, w.early);
    if (!first) {
      this.forget(id, w);
      return false;
    }
    const subject = new BehaviorSubject(first);
    // The one subscriber: each state to every watcher. A watcher leaving meanwhile (its last
    // state came) is taken out of the set: a Set's iteration goes on past a deletion.
    subject.subscribe((s) => {
      for (const watcher of w.watchers) watcher.next(s);
    });
    w.subject = subject;
    if (isTerminal(first.status)) this.end(id, w);
    return true;
  }

  private onState(s: JobSnapshot): void {
    const w = this.watched.get(s.id);
    if (!w) return;
    if (!w.subject) {
      w.early = newer(w.early, s);
      return;
    }
    w.queue = w.queue.then(() => this.deliver(w, s));
  }

  /** Passes a state on; a jump over versions (another replica's writes) is filled with the statuses between. */
  private async deliver(w: Watched, s: JobSnapshot): Promise<void> {
    const last = w.subject!.value;
    if (w.ended || s.version <= last.version) return;
    if (s.version > last.version + 1 && !nothingBetween(last, s)) {
      const between = await this.store.statesBetween(s.id, last.version, s.version).catch(() => []);
      for (const b of between) {
        if (b.version > w.subject!.value.version && !w.ended) w.subject!.next(b);
      }
    }
    if (w.ended) return;
    w.subject!.next(s);
    if (isTerminal(s.status)) this.end(s.id, w);
  }

  private end(id: string, w: Watched): void {
    this.finish(w);
    this.forget(id, w);
  }

  /** No more states: every watcher completes. */
  private finish(w: Watched): void {
    w.ended = true;
    w.subject?.complete();
    const watchers = [...w.watchers];
    w.watchers.clear();
    for (const watcher of watchers) watcher.complete();
  }

  private forget(id: string, w: Watched): void {
    w.unfollow();
    if (this.watched.get(id) === w) this.watched.delete(id);
  }
}

/** The next status on the way to DONE, where none can come between (FAILED and CANCELLED may follow any). */
const NEXT_ON_THE_WAY: Partial<Record<JobStatus, JobStatus>> = {
  [JobStatus.PENDING]: JobStatus.RUNNING,
  [JobStatus.RUNNING]: JobStatus.READING_RESULTS,
  [JobStatus.READING_RESULTS]: JobStatus.DONE,
};

/**
 * Whether no status change can lie between two states of a job, whatever versions (progress
 * writes) lie between: within one attempt statuses only move forward, so the same status, or
 * the next one on the way to DONE, leaves nothing to fill in from the history. Saves a
 * replica's read of the history for most jumps (progress is notified at most about once a
 * second, so its versions are often skipped), right when a status is going out to watchers.
 */
function nothingBetween(last: JobSnapshot, next: JobSnapshot): boolean {
  return last.attempt === next.attempt && (last.status === next.status || NEXT_ON_THE_WAY[last.status] === next.status);
}

function newer(a: JobSnapshot | undefined, b: JobSnapshot | undefined): JobSnapshot | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.version > a.version ? b : a;
}
