// Domain errors. Each names what went wrong in words a caller can act on;
// src/grpc/errors.ts maps them to gRPC status codes in one place.

export class InvalidArgumentError extends Error {
  override readonly name = "InvalidArgumentError";
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
}

export class ResourceExhaustedError extends Error {
  override readonly name = "ResourceExhaustedError";
}

export class UnavailableError extends Error {
  override readonly name = "UnavailableError";
}

export class AlreadyExistsError extends Error {
  override readonly name = "AlreadyExistsError";
}

export function jobNotFound(id: string): NotFoundError {
  return new NotFoundError(`no job with id ${id} (finished jobs are kept for CHJOB_JOB_RETENTION)`);
}

/**
 * A start-up failure that the configuration fixes (a busy port, a data directory in use):
 * `chjob serve` exits 2 for it, as for a bad variable. Its message names the variable.
 */
export class ConfigurationConflictError extends Error {
  override readonly name: string = "ConfigurationConflictError";
}
