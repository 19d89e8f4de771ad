// Domain errors to gRPC status codes, in one place.
import { status, type ServiceError } from "@grpc/grpc-js";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError, ResourceExhaustedError, UnauthenticatedError, UnavailableError } from "../errors.js";

const CODES: Array<[new (...args: never[]) => Error, status]> = [
  [InvalidArgumentError, status.INVALID_ARGUMENT],
  [NotFoundError, status.NOT_FOUND],
  [ResourceExhaustedError, status.RESOURCE_EXHAUSTED],
  [UnavailableError, status.UNAVAILABLE],
  [UnauthenticatedError, status.UNAUTHENTICATED],
  [AlreadyExistsError, status.ALREADY_EXISTS],
];

/** The gRPC error for a thrown value; anything unexpected is INTERNAL with a generic message (the cause is logged). */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status; details: string } {
  for (const [type, code] of CODES) {
    if (err instanceof type) return { code, details: err.message, message: err.message };
  }
  return { code: status.INTERNAL, details: "internal error; see the service's log", message: "internal error" };
}

export function isExpected(err: unknown): boolean {
  return CODES.some(([type]) => err instanceof type);
}
