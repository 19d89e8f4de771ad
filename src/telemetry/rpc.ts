// What both gRPC interceptors (metrics, traces) read from a call: the service
// and method from its path, its type, its status code's name, whether its
// deadline has passed.
import { status, type ServerInterceptingCallInterface } from "@grpc/grpc-js";

export interface RpcName {
  /** Fully qualified service, e.g. `chjob.v1.JobService`. */
  service: string;
  /** Method, e.g. `CreateJob`. */
  method: string;
}

/** `/chjob.v1.JobService/CreateJob` to its service and method. */
export function rpcName(path: string): RpcName {
  const m = /^\/?([^/]+)\/([^/]+)$/.exec(path);
  return m ? { service: m[1]!, method: m[2]! } : { service: "unknown", method: path };
}

/** grpc-prometheus's grpc_type. */
export function rpcType(d: { requestStream: boolean; responseStream: boolean }): "unary" | "client_stream" | "server_stream" | "bidi_stream" {
  if (d.requestStream) return d.responseStream ? "bidi_stream" : "client_stream";
  return d.responseStream ? "server_stream" : "unary";
}

/**
 * grpc-prometheus's grpc_code: the status code's name as Go's gRPC writes it (`OK`,
 * `InvalidArgument`, `NotFound`, …), so dashboards and alerts made for it work unchanged.
 */
const CODE_NAMES: Record<number, string> = {
  [status.OK]: "OK",
  [status.CANCELLED]: "Canceled",
  [status.UNKNOWN]: "Unknown",
  [status.INVALID_ARGUMENT]: "InvalidArgument",
  [status.DEADLINE_EXCEEDED]: "DeadlineExceeded",
  [status.NOT_FOUND]: "NotFound",
  [status.ALREADY_EXISTS]: "AlreadyExists",
  [status.PERMISSION_DENIED]: "PermissionDenied",
  [status.RESOURCE_EXHAUSTED]: "ResourceExhausted",
  [status.FAILED_PRECONDITION]: "FailedPrecondition",
  [status.ABORTED]: "Aborted",
  [status.OUT_OF_RANGE]: "OutOfRange",
  [status.UNIMPLEMENTED]: "Unimplemented",
  [status.INTERNAL]: "Internal",
  [status.UNAVAILABLE]: "Unavailable",
  [status.DATA_LOSS]: "DataLoss",
  [status.UNAUTHENTICATED]: "Unauthenticated",
};

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? "Unknown";
}

/** The status of a call that ended without one from the handler: its deadline passed, or the client went away. */
export function abandonedStatus(call: ServerInterceptingCallInterface): status {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) && at <= Date.now() ? status.DEADLINE_EXCEEDED : status.CANCELLED;
}
