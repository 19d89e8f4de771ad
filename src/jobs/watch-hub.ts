// WatchJob's source: one RxJS subject per watched job holding its newest
// committed state, fed by the store's `changes`. A state reaches a watcher
// only after the store committed it.
import { BehaviorSubject, defer, finalize, of, type Observable, type Subscription } from "rxjs";
import type { JobStore } from "../store/job-store.js";
import { isTerminal, type JobSnapshot } from "./job.js";

interface Watched {
  /** Set once the first read is in; states committed before that are kept in `early`. */
  subject: BehaviorSubject<JobSnapshot> | undefined;
  early: JobSnapshot | undefined;
  ready: Promise<boolean>;
  watchers: number;
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
      const entry: Watched = { subject: undefined, early: undefined, ready: Promise.resolve(false), watchers: 0, unfollow: this.store.follow(id), queue: Promise.resolve() };
      entry.ready = this.load(id, entry);
      this.watched.set(id, (w = entry));
    }
    const found = await w.ready;
    if (!found || !w.subject) return undefined;
    const subject = w.subject;
    if (subject.isStopped) return of(subject.value);
    const entry = w;
    return defer(() => {
      entry.watchers++;
      return subject.asObservable();
    }).pipe(
      finalize(() => {
        if (--entry.watchers === 0 && this.watched.get(id) === entry && !subject.isStopped) this.forget(id, entry);
      }),
    );
  }

  close(): void {
    this.subscription.unsubscribe();
    for (const w of this.watched.values()) {
      w.unfollow();
      w.subject?.complete();
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
    w.subject = new BehaviorSubject(first);
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
    const subject = w.subject!;
    const last = subject.value;
    if (subject.isStopped || s.version <= last.version) return;
    if (s.version > last.version + 1) {
      const between = await this.store.statesBetween(s.id, last.version, s.version).catch(() => []);
      for (const b of between) {
        if (b.version > subject.value.version && !subject.isStopped) subject.next(b);
      }
    }
    if (subject.isStopped) return;
    subject.next(s);
    if (isTerminal(s.status)) this.end(s.id, w);
  }

  private end(id: string, w: Watched): void {
    w.subject!.complete();
    this.forget(id, w);
  }

  private forget(id: string, w: Watched): void {
    w.unfollow();
    if (this.watched.get(id) === w) this.watched.delete(id);
  }
}

function newer(a: JobSnapshot | undefined, b: JobSnapshot | undefined): JobSnapshot | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.version > a.version ? b : a;
}
