// CHJOB_AUTH_TOKEN as a server interceptor: a call to a protected method without
// `authorization: Bearer <token>` ends UNAUTHENTICATED before it reaches its
// handler (README, "Security"). Health and reflection stay open.
import { createHash, timingSafeEqual } from "node:crypto";
import { ServerInterceptingCall, ServerListenerBuilder, ResponderBuilder, status, type Metadata, type ServerInterceptor } from "@grpc/grpc-js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";

/**
 * Services callable without the token: probes and tools (grpcurl, buf curl) need them, and they
 * reveal no job or data. Every other method, JobService's and any added later, needs the token.
 */
export const OPEN_SERVICES = [Health.typeName, "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

const isOpen = (path: string) => OPEN_SERVICES.some((service) => path.startsWith(`/${service}/`));

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

/** Ends calls to protected methods that lack the token with UNAUTHENTICATED; their handlers never run. */
export function requireToken(token: string): ServerInterceptor {
  return (method, call) => {
    if (isOpen(method.path)) return new ServerInterceptingCall(call);
    const listener = new ServerListenerBuilder()
      .withOnReceiveMetadata((metadata, next) => {
        if (authorized(metadata, token)) next(metadata);
        else call.sendStatus({ ...DENIED, metadata: null });
      })
      .build();
    return new ServerInterceptingCall(call, new ResponderBuilder().withStart((next) => next(listener)).build());
  };
}
