// JobWatchHub on a scripted store: many watchers of one job, each getting the current state at
// once and every later one; a version jump filled from the store's history; all watchers ending
// at the terminal state; a watcher leaving early; the job forgotten (and unfollowed) when its
// last watcher leaves or it ends; a watcher after the end getting the final state alone.
import { Subject, type Observable, type Subscription } from "rxjs";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { JobStatus, NO_PROGRESS, type JobSnapshot } from "../src/jobs/job.js";
import { DEFAULT_KIND } from "../src/jobs/result-format.js";
import { JobWatchHub } from "../src/jobs/watch-hub.js";
import type { JobStore } from "../src/store/job-store.js";

const ID = "00000000-0000-4000-8000-0000000000aa";

function state(version: number, status: JobStatus, rowsRead = 0): JobSnapshot {
  return {
    id: ID, reportId: "r", queryId: "q", queryText: "SELECT 1", status, error: "", resultUri: "", resultSize: 0, exportUri: "",
    totalRows: undefined, bytesProcessed: undefined, progress: { ...NO_PROGRESS, rowsRead }, createdAt: 0, updatedAt: 0,
    version, attempt: 1, replica: "test", requestId: "", ...DEFAULT_KIND, contentType: "text/csv",
    limits: { timeoutMs: 1000 }, reuseMaxAgeMs: undefined, reusedFrom: "", traceParent: "",
  };
}

/** What the hub uses of a store: `changes`, follow(), get(), statesBetween(); the rest is not called. */
function scriptedStore(first: JobSnapshot | undefined, history: JobSnapshot[] = []) {
  const changes = new Subject<JobSnapshot>();
  let following = 0;
  let historyReads = 0;
  const store = {
    changes: changes as Observable<JobSnapshot>,
    follow: () => {
      following++;
      let done = false;
      return () => {
        if (!done) following--;
        done = true;
      };
    },
    get: async () => first,
    statesBetween: async (_id: string, after: number, before: number) => {
      historyReads++;
      return history.filter((s) => s.version > after && s.version < before);
    },
  } as unknown as JobStore;
  return { store, changes, following: () => following, historyReads: () => historyReads };
}

/** Subscribes, recording [version, status] of each state and whether it completed. */
function record(states: Observable<JobSnapshot>) {
  const w = { seen: [] as Array<[number, JobStatus]>, completed: false, sub: undefined as unknown as Subscription };
  w.sub = states.subscribe({ next: (s) => w.seen.push([s.version, s.status]), complete: () => (w.completed = true) });
  return w;
}

const tick = () => new Promise((r) => setImmediate(r));
const test = suite("watch-hub");

test("many watchers: the current state at once, every later one in order, a version jump filled from the history, all complete at the terminal state", async () => {
  const history = [state(3, JobStatus.READING_RESULTS)];
  const { store, changes, following } = scriptedStore(state(1, JobStatus.PENDING), history);
  const hub = new JobWatchHub(store);
  const watchers = await Promise.all(Array.from({ length: 1000 }, async () => record((await hub.watch(ID))!)));
  assert.is(hub.size, 1);
  assert.is(following(), 1, "one follow per job, however many watch it");
  changes.next(state(2, JobStatus.RUNNING));
  changes.next(state(2, JobStatus.RUNNING)); // a repeat is not passed on
  changes.next(state(4, JobStatus.DONE)); // 3 comes from the history
  await tick();
  for (const w of watchers) {
    assert.equal(w.seen, [
      [1, JobStatus.PENDING],
      [2, JobStatus.RUNNING],
      [3, JobStatus.READING_RESULTS],
      [4, JobStatus.DONE],
    ]);
    assert.ok(w.completed);
  }
  assert.is(hub.size, 0, "an ended job is forgotten");
  assert.is(following(), 0, "and unfollowed");
  const late = record((await hub.watch(ID))!);
  assert.equal(late.seen, [[1, JobStatus.PENDING]], "a new watch reads the store again (here: the scripted first state)");
  late.sub.unsubscribe();
  hub.close();
});

test("a jump over progress-only versions to the same status or the next on the way to DONE reads no history; a new attempt or a FAILED does", async () => {
  const attempt2 = (s: JobSnapshot) => ({ ...s, attempt: 2 });
  const history = [attempt2(state(9, JobStatus.RUNNING)), attempt2(state(11, JobStatus.READING_RESULTS))];
  const { store, changes, historyReads } = scriptedStore(state(1, JobStatus.RUNNING), history);
  const hub = new JobWatchHub(store);
  const w = record((await hub.watch(ID))!);
  changes.next(state(4, JobStatus.RUNNING, 5)); // progress, versions 2 and 3 skipped
  changes.next(state(6, JobStatus.READING_RESULTS)); // the next status, version 5 (progress) skipped
  await tick();
  assert.is(historyReads(), 0, "nothing to fill in");
  changes.next(attempt2(state(10, JobStatus.RUNNING))); // a new attempt: filled from the history (RUNNING at 9)
  await tick();
  changes.next(attempt2(state(12, JobStatus.FAILED))); // FAILED may follow any status: filled (READING_RESULTS at 11)
  await tick();
  assert.equal(w.seen, [
    [1, JobStatus.RUNNING],
    [4, JobStatus.RUNNING],
    [6, JobStatus.READING_RESULTS],
    [9, JobStatus.RUNNING],
    [10, JobStatus.RUNNING],
    [11, JobStatus.READING_RESULTS],
    [12, JobStatus.FAILED],
  ]);
  assert.is(historyReads(), 2);
  assert.ok(w.completed);
  hub.close();
});

test("a watcher that leaves gets nothing more; the last one leaving forgets the job; a watcher after the end gets the final state and completes", async () => {
  const { store, changes, following } = scriptedStore(state(1, JobStatus.RUNNING));
  const hub = new JobWatchHub(store);
  const a = record((await hub.watch(ID))!);
  const b = record((await hub.watch(ID))!);
  a.sub.unsubscribe();
  changes.next(state(2, JobStatus.RUNNING, 10));
  await tick();
  assert.equal(a.seen, [[1, JobStatus.RUNNING]]);
  assert.equal(b.seen, [
    [1, JobStatus.RUNNING],
    [2, JobStatus.RUNNING],
  ]);
  b.sub.unsubscribe();
  assert.is(hub.size, 0);
  assert.is(following(), 0);

  const done = scriptedStore(state(5, JobStatus.DONE));
  const hub2 = new JobWatchHub(done.store);
  const c = record((await hub2.watch(ID))!);
  assert.equal(c.seen, [[5, JobStatus.DONE]]);
  assert.ok(c.completed);
  assert.is(hub2.size, 0);
  hub.close();
  hub2.close();
});

test("no such job: undefined, and nothing left followed", async () => {
  const { store, following } = scriptedStore(undefined);
  const hub = new JobWatchHub(store);
  assert.is(await hub.watch(ID), undefined);
  assert.is(hub.size, 0);
  assert.is(following(), 0);
  hub.close();
});

test("close: every watcher completes", async () => {
  const { store } = scriptedStore(state(1, JobStatus.RUNNING));
  const hub = new JobWatchHub(store);
  const w = record((await hub.watch(ID))!);
  hub.close();
  assert.ok(w.completed);
});

test.run();
