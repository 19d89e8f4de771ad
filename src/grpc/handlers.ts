// JobService handlers: validate the request, call the runner or the registry,
// answer with the job. Errors become gRPC statuses in one place (errors.ts).
import { create } from "@bufbuild/protobuf";
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { concatMap, from, of, type Observable } from "rxjs";
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
import type { ServiceHandlers } from "./bridge.js";
import { toProtoJob } from "./convert.js";
import { isExpected, toServiceError } from "./errors.js";
import { PageTokens } from "./page-token.js";
import { streamStates } from "./watch.js";

export interface HandlerDeps {
  runner: JobRunner;
  store: JobStore;
  watchers: JobWatchHub;
  /** Signs page tokens; kept in the store, so tokens outlive restarts. */
  pageTokenKey: Buffer;
  log: Logger;
  maxQueryBytes: number;
  /** The service's limits of every job (a request may lower them). */
  limits: LimitDefaults;
  /** Signs `result_url` for DONE jobs (CHJOB_PRESIGN_TTL); absent: no URL. */
  urls?: UrlSigner;
}

export function jobServiceHandlers({ runner, store, watchers, pageTokenKey, log, maxQueryBytes, limits, urls }: HandlerDeps): ServiceHandlers<typeof JobService> {
  const tokens = new PageTokens(pageTokenKey);

  const hasUrl = (s: JobSnapshot) => urls !== undefined && s.status === JobStatus.DONE && s.resultUri !== "";

  /** A fresh presigned GET of a DONE job's result object; "" without CHJOB_PRESIGN_TTL (signing is local: no call to S3). */
  const resultUrl = async (s: JobSnapshot): Promise<string> => {
    if (!hasUrl(s)) return "";
    const at = parseS3Uri(s.resultUri);
    if (!at) return "";
    try {
      return await urls!.presignGet(at);
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
  const watchMessages = new WeakMap<JobSnapshot, WatchJobResponse>();
  const signing = new WeakMap<JobSnapshot, Promise<void>>();
  const watchMessage = (s: JobSnapshot): WatchJobResponse => {
    let message = watchMessages.get(s);
    if (!message) watchMessages.set(s, (message = create(WatchJobResponseSchema, { job: toProtoJob(s) })));
    return message;
  };
  /** Passes each state on once its message is made: at once, or after signing its result_url. */
  const withMessage = (s: JobSnapshot): Observable<JobSnapshot> => {
    if (!hasUrl(s) || watchMessages.has(s)) return of(s);
    let signed = signing.get(s);
    if (!signed) {
      signed = protoJob(s).then((job) => void watchMessages.set(s, create(WatchJobResponseSchema, { job })));
      signing.set(s, signed);
    }
    return from(signed.then(() => s));
  };

  /** Runs a unary handler body and answers with its value or its error's status. */
  const unary =
    <Req, Res>(method: string, body: (req: Req) => Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      body(call.request).then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (!isExpected(err)) log.error({ method, err: String((err as Error)?.stack ?? err) }, "unexpected error");
          callback(toServiceError(err));
        },
      );
    };

  const mustExist = async (id: string) => {
    const job = await store.get(checkJobId(id));
    if (!job) throw jobNotFound(id);
    return job;
  };

  return {
    createJob: unary("CreateJob", async (req) => {
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
    }),

    getJob: unary("GetJob", async (req) => create(GetJobResponseSchema, { job: await protoJob(await mustExist(req.jobId)) })),

    cancelJob: unary("CancelJob", async (req) => create(CancelJobResponseSchema, { job: await protoJob(await runner.cancel(checkJobId(req.jobId))) })),

    listJobs: unary("ListJobs", async (req) => {
      const reportId = req.reportId === "" ? "" : checkPathId("report_id", req.reportId);
      const limit = checkPageSize(req.pageSize);
      const after = req.pageToken === "" ? undefined : tokens.decode(req.pageToken, reportId);
      const page = await store.list({ reportId: reportId || undefined, limit, after });
      return create(ListJobsResponseSchema, {
        jobs: await Promise.all(page.jobs.map(protoJob)),
        nextPageToken: page.next === undefined ? "" : tokens.encode(reportId, page.next),
      });
    }),

    watchJob: (call) => {
      const start = async () => {
        const id = checkJobId(call.request.jobId);
        const states = await watchers.watch(id);
        if (!states) throw jobNotFound(id);
        return states;
      };
      start().then(
        (states) => streamStates(call, states.pipe(concatMap(withMessage)), watchMessage),
        (err: unknown) => {
          if (!isExpected(err)) log.error({ method: "WatchJob", err: String((err as Error)?.stack ?? err) }, "unexpected error");
          // grpc-js turns an 'error' event on a server stream into the call's status.
          call.emit("error", toServiceError(err));
        },
      );
    },
  };
}
