// JobService: validate the request, call the runner or the job store, answer
// with the job. Plain typed functions that throw domain errors (src/errors.ts);
// bridge.ts adapts them to grpc-js and errors.ts maps the errors to statuses.
import { create } from "@bufbuild/protobuf";
import {
  CancelJobResponseSchema,
  CreateJobResponseSchema,
  GetJobResponseSchema,
  ListJobsResponseSchema,
  WatchJobResponseSchema,
  type JobService,
  type WatchJobResponse,
} from "../../gen/chjob/v1/job_service_pb.js";
import { jobNotFound } from "../errors.js";
import type { Logger } from "../log.js";
import { JobStatus, type JobSnapshot } from "../jobs/job.js";
import type { JobRunner } from "../jobs/runner.js";
import { resolveKind } from "../jobs/result-format.js";
import { checkDuration, checkJobId, checkLimits, checkPageSize, checkPathId, checkQueryText, checkRequestId, type LimitDefaults } from "../jobs/validate.js";
import type { JobWatchHub } from "../jobs/watch-hub.js";
import type { JobStore } from "../store/job-store.js";
import { parseS3Uri } from "../storage/object-store.js";
import type { UrlSigner } from "../storage/presign.js";
import type { ServiceImpl } from "./bridge.js";
import { toProtoJob } from "./convert.js";
import { PageTokens } from "./page-token.js";
import { jobStates } from "./watch.js";

export interface HandlerDeps {
  runner: JobRunner;
  store: JobStore;
  watchers: JobWatchHub;
  /** Signs page tokens; kept in the store, so tokens outlive restarts. */
  pageTokenKey: Buffer;
  maxQueryBytes: number;
  /** The service's limits of every job (a request may lower them). */
  limits: LimitDefaults;
  /** Signs `result_url` for DONE jobs (CHJOB_PRESIGN_TTL); absent: no URL. */
  urls?: UrlSigner;
  log: Logger;
}

export function jobService({ runner, store, watchers, pageTokenKey, log, maxQueryBytes, limits, urls }: HandlerDeps): ServiceImpl<typeof JobService> {
  const tokens = new PageTokens(pageTokenKey);

  /** A fresh presigned GET of a DONE job's result object; "" without CHJOB_PRESIGN_TTL (signing is local: no call to S3). */
  const resultUrl = async (s: JobSnapshot): Promise<string> => {
    if (urls === undefined || s.status !== JobStatus.DONE) return "";
    const at = parseS3Uri(s.resultUri);
    if (!at) return "";
    try {
      return await urls.presignGet(at);
    } catch (err) {
      log.error({ job: s.id, err: String((err as Error)?.stack ?? err) }, "could not sign the result_url");
      return "";
    }
  };

  /** The job as a message, with its result_url signed now. */
  const protoJob = async (s: JobSnapshot) => toProtoJob(s, await resultUrl(s));

  /**
   * One message per job state, shared by every watcher of the job (a state is an immutable
   * snapshot; bridge.ts serializes a shared streamed message once too): a DONE state's
   * result_url is signed once for all its watchers. A watcher that comes after the job ended
   * reads the job anew from the store, so it gets a URL signed then.
   */
  const watchMessages = new WeakMap<JobSnapshot, Promise<WatchJobResponse>>();
  const watchMessage = (s: JobSnapshot): Promise<WatchJobResponse> => {
    let message = watchMessages.get(s);
    if (!message) watchMessages.set(s, (message = protoJob(s).then((job) => create(WatchJobResponseSchema, { job }))));
    return message;
  };

  /** The same as an iterator's result, shared by the job's watchers as the message is. */
  const watchResults = new WeakMap<JobSnapshot, Promise<IteratorResult<WatchJobResponse>>>();
  const watchResult = (s: JobSnapshot): Promise<IteratorResult<WatchJobResponse>> => {
    let result = watchResults.get(s);
    if (!result) watchResults.set(s, (result = watchMessage(s).then((value) => ({ value, done: false }))));
    return result;
  };

  const mustExist = async (id: string) => {
    const job = await store.get(checkJobId(id));
    if (!job) throw jobNotFound(id);
    return job;
  };

  return {
    async createJob(req) {
      const reportId = checkPathId("report_id", req.reportId);
      const queryId = checkPathId("query_id", req.queryId);
      checkQueryText(req.queryText, maxQueryBytes);
      const requestId = req.requestId === "" ? undefined : checkRequestId(req.requestId);
      const job = await runner.create({
        reportId,
        queryId,
        queryText: req.queryText,
        requestId,
        kind: resolveKind(req.format, req.compression),
        limits: checkLimits(req, limits),
        reuseMaxAgeMs: checkDuration("reuse_max_age", req.reuseMaxAge),
      });
      return create(CreateJobResponseSchema, { job: await protoJob(job) });
    },

    async getJob(req) {
      return create(GetJobResponseSchema, { job: await protoJob(await mustExist(req.jobId)) });
    },

    async cancelJob(req) {
      return create(CancelJobResponseSchema, { job: await protoJob(await runner.cancel(checkJobId(req.jobId))) });
    },

    async listJobs(req) {
      const reportId = req.reportId === "" ? "" : checkPathId("report_id", req.reportId);
      const limit = checkPageSize(req.pageSize);
      const after = req.pageToken === "" ? undefined : tokens.decode(req.pageToken, reportId);
      const page = await store.list({ reportId: reportId || undefined, limit, after });
      return create(ListJobsResponseSchema, {
        jobs: await Promise.all(page.jobs.map(protoJob)),
        nextPageToken: page.next === undefined ? "" : tokens.encode(reportId, page.next),
      });
    },

    watchJob(req, { signal }) {
      // A plain iterator rather than an async generator: the generator's own promise hops per
      // message, times every watcher of a job at each of its states, all at the same moment.
      let states: AsyncIterableIterator<JobSnapshot> | undefined;
      let opening: Promise<AsyncIterableIterator<JobSnapshot>> | undefined;
      const open = async () => {
        const id = checkJobId(req.jobId);
        const source = await watchers.watch(id);
        if (!source) throw jobNotFound(id);
        return (states = jobStates(source, signal));
      };
      const toMessage = (r: IteratorResult<JobSnapshot>): IteratorResult<WatchJobResponse> | Promise<IteratorResult<WatchJobResponse>> =>
        r.done ? { value: undefined, done: true } : watchResult(r.value);
      const messages: AsyncIterableIterator<WatchJobResponse> = {
        [Symbol.asyncIterator]() {
          return messages;
        },
        next: () => (states ? states.next() : (opening ??= open()).then((s) => s.next())).then(toMessage),
        return: async () => {
          await states?.return?.();
          return { value: undefined, done: true };
        },
      };
      return messages;
    },
  };
}
