// Where job states live. The interface is what the runner and the handlers
// depend on; the in-memory registry is the first implementation (a shared,
// database-backed one can replace it without touching them).
import { BehaviorSubject, of, type Observable } from "rxjs";
import { isTerminal, type JobSnapshot } from "./job.js";

export interface ListQuery {
  /** Only this report's jobs; undefined for all. */
  reportId: string | undefined;
  limit: number;
  /** Registry-defined position returned as `next` by the previous page. */
  after: string | undefined;
}

export interface ListPage {
  jobs: JobSnapshot[];
  /** Position after the last job of this page; undefined on the last page. */
  next: string | undefined;
}

export interface JobRegistry {
  /** Stores a new job's first state. */
  create(job: JobSnapshot): Promise<void>;
  /** Stores a later state of a job; states older than the stored one are ignored. */
  publish(job: JobSnapshot): Promise<void>;
  get(id: string): Promise<JobSnapshot | undefined>;
  /** The job's current state at once, then every later one; completes after a terminal state. */
  watch(id: string): Observable<JobSnapshot> | undefined;
  /** Newest first. */
  list(query: ListQuery): Promise<ListPage>;
  close(): void;
}

interface Entry {
  seq: number;
  subject: BehaviorSubject<JobSnapshot>;
}

/** Jobs in this process's memory; finished jobs are dropped `retentionMs` after they ended. */
export class MemoryJobRegistry implements JobRegistry {
  private readonly entries = new Map<string, Entry>();
  private seq = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly retentionMs: number,
    private readonly now: () => number = Date.now,
  ) {
    const every = Math.min(Math.max(retentionMs / 10, 250), 60_000);
    this.sweeper = setInterval(() => this.evictExpired(), every);
    this.sweeper.unref();
  }

  async create(job: JobSnapshot): Promise<void> {
    if (this.entries.has(job.id)) throw new Error(`job ${job.id} exists already`);
    this.entries.set(job.id, { seq: ++this.seq, subject: new BehaviorSubject(job) });
  }

  async publish(job: JobSnapshot): Promise<void> {
    const entry = this.entries.get(job.id);
    if (!entry || entry.subject.isStopped || job.version <= entry.subject.value.version) return;
    entry.subject.next(job);
    if (isTerminal(job.status)) entry.subject.complete();
  }

  async get(id: string): Promise<JobSnapshot | undefined> {
    return this.entries.get(id)?.subject.value;
  }

  watch(id: string): Observable<JobSnapshot> | undefined {
    const subject = this.entries.get(id)?.subject;
    if (!subject) return undefined;
    // A completed BehaviorSubject replays nothing: a finished job's watcher gets its last state.
    return subject.isStopped ? of(subject.value) : subject.asObservable();
  }

  async list({ reportId, limit, after }: ListQuery): Promise<ListPage> {
    const before = after === undefined ? Infinity : Number(after);
    const all = [...this.entries.values()];
    const jobs: JobSnapshot[] = [];
    let lastSeq = 0;
    for (let i = all.length - 1; i >= 0; i--) {
      const { seq, subject } = all[i]!;
      if (seq >= before) continue;
      if (reportId !== undefined && subject.value.reportId !== reportId) continue;
      if (jobs.length === limit) return { jobs, next: String(lastSeq) };
      jobs.push(subject.value);
      lastSeq = seq;
    }
    return { jobs, next: undefined };
  }

  /** Drops finished jobs whose retention has passed. */
  evictExpired(): void {
    const cutoff = this.now() - this.retentionMs;
    for (const [id, { subject }] of this.entries) {
      const job = subject.value;
      if (isTerminal(job.status) && job.updatedAt <= cutoff) this.entries.delete(id);
    }
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
