// Bearer-token check for JobService calls, compared in constant time.
import { createHash, timingSafeEqual } from "node:crypto";
import { status, type Metadata, type UntypedHandleCall, type UntypedServiceImplementation } from "@grpc/grpc-js";

const digest = (s: string) => createHash("sha256").update(s).digest();

/** Whether the call's metadata carries `authorization: Bearer <token>`. */
export function authorized(metadata: Metadata, token: string): boolean {
  const header = metadata.get("authorization")[0];
  const given = typeof header === "string" && header.startsWith("Bearer ") ? header.slice(7) : "";
  // Equal-length digests: the comparison time says nothing about the token.
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}

const DENIED = {
  code: status.UNAUTHENTICATED,
  details: "missing or wrong token: send metadata `authorization: Bearer <CHJOB_AUTH_TOKEN>`",
};

/** Wraps every handler so that calls without the token get UNAUTHENTICATED. */
export function requireToken<H extends object>(handlers: H, token: string): H {
  const wrapped: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(handlers as UntypedServiceImplementation)) {
    wrapped[name] = ((call: { metadata: Metadata; emit(event: "error", e: unknown): void }, callback?: (e: unknown) => void) => {
      if (authorized(call.metadata, token)) return (handler as (...a: unknown[]) => void)(call, callback);
      if (callback) callback(DENIED);
      else call.emit("error", DENIED); // a server stream's 'error' event becomes its status
    }) as UntypedHandleCall;
  }
  return wrapped as H;
}
