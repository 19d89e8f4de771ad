// Domain errors (src/errors.ts) to gRPC statuses: the one place that maps them.
// The bridge (bridge.ts) answers every handler's thrown error with `toStatus`.
import { status, type StatusObject } from "@grpc/grpc-js";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, UnavailableError } from "../errors.js";

const CODES: Array<[new (...args: never[]) => Error, status]> = [
  [InvalidArgumentError, status.INVALID_ARGUMENT],
  [NotFoundError, status.NOT_FOUND],
  [ResourceExhaustedError, status.RESOURCE_EXHAUSTED],
  [UnavailableError, status.UNAVAILABLE],
  [AlreadyExistsError, status.ALREADY_EXISTS],
];

/** The code of a domain error; undefined for anything else (a bug or an unforeseen failure). */
export function codeOf(err: unknown): status | undefined {
  return CODES.find(([type]) => err instanceof type)?.[1];
}

/**
 * The status answering a thrown value: a domain error's code and message; anything else is
 * INTERNAL with a generic message (the bridge logs the cause, the caller never sees it).
 */
export function toStatus(err: unknown): Pick<StatusObject, "code" | "details"> {
  const code = codeOf(err);
  if (code === undefined) return { code: status.INTERNAL, details: "internal error; see the service's log" };
  return { code, details: (err as Error).message };
}
