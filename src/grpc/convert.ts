// Job snapshots to their protobuf messages.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { JobProgressSchema, JobSchema, type Job } from "../../gen/chjob/v1/job_service_pb.js";
import type { JobSnapshot } from "../jobs/job.js";

/** `resultUrl`: the presigned GET of a DONE job's result (handlers.ts signs it); "" for none. */
export function toProtoJob(s: JobSnapshot, resultUrl = ""): Job {
  return create(JobSchema, {
    id: s.id,
    reportId: s.reportId,
    queryId: s.queryId,
    queryText: s.queryText,
    status: s.status,
    error: s.error,
    resultUri: s.resultUri,
    resultSize: BigInt(s.resultSize),
    exportUri: s.exportUri,
    totalRows: s.totalRows === undefined ? undefined : BigInt(s.totalRows),
    bytesProcessed: s.bytesProcessed === undefined ? undefined : BigInt(s.bytesProcessed),
    progress: create(JobProgressSchema, {
      rowsRead: BigInt(s.progress.rowsRead),
      bytesRead: BigInt(s.progress.bytesRead),
      totalRowsToRead: BigInt(s.progress.totalRowsToRead),
      elapsedMs: BigInt(s.progress.elapsedMs),
    }),
    createdAt: timestampFromMs(s.createdAt),
    updatedAt: timestampFromMs(s.updatedAt),
    attempt: s.attempt,
    replica: s.replica,
    requestId: s.requestId,
    format: s.format,
    compression: s.compression,
    contentType: s.contentType,
    reusedFrom: s.reusedFrom,
    resultUrl,
  });
}
