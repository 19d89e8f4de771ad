// Pure rules of a job's state (src/jobs/job.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ELAPSED_ONLY_PROGRESS_MS, NO_PROGRESS, progressIsNews } from "../src/jobs/job.js";

const at = (rowsRead: number, elapsedMs: number) => ({ rowsRead, bytesRead: rowsRead * 8, totalRowsToRead: 1000, elapsedMs });

test("progressIsNews: rows read moved, or the query's clock moved the interval with nothing read", () => {
  assert.ok(progressIsNews(NO_PROGRESS, at(0, 100)), "the first sample (totals known) is news");
  assert.ok(progressIsNews(at(10, 500), at(20, 1000)), "more rows read");
  assert.not.ok(progressIsNews(at(10, 500), at(10, 1000)), "only the clock moved, by less than the interval");
  assert.ok(progressIsNews(at(10, 500), at(10, 500 + ELAPSED_ONLY_PROGRESS_MS)), "a query reading nothing shows it is alive every interval");
  assert.not.ok(progressIsNews(at(10, 500), at(10, 500)), "the same sample again");
});

test.run();
