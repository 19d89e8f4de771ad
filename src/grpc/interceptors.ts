// The one chain of grpc-js server interceptors every call goes through, JobService's,
// Health's and reflection's alike: observers given by the caller (metrics, tracing),
// then the call log, then the token check.
//
// grpc-js order: the first interceptor of the list is the outermost. It sees a call's
// metadata first and its status last; an interceptor that ends a call (the token check)
// hides it only from those after it. So observers come first and see every call,
// refused ones included, and the token check comes last, right before the handlers.
import { performance } from "node:perf_hooks";
import { ResponderBuilder, ServerInterceptingCall, ServerListenerBuilder, status, type ServerInterceptor } from "@grpc/grpc-js";
import type { Logger } from "../log.js";
import { requireToken } from "./auth.js";

export type { ServerInterceptor };

export interface InterceptorOptions {
  log: Logger;
  /** CHJOB_AUTH_TOKEN: when set, every method but Health's and reflection's needs it. */
  authToken: string | undefined;
  /** More interceptors (metrics, tracing): outermost, in this order. */
  extra?: ServerInterceptor[];
}

/** The server's interceptors, outermost first: `extra`, the call log, the token check. */
export function interceptorChain({ log, authToken, extra = [] }: InterceptorOptions): ServerInterceptor[] {
  return [...extra, logCalls(log), ...(authToken ? [requireToken(authToken)] : [])];
}

/** Codes that say the service (not the request) has a problem: logged at warn. */
const SERVICE_TROUBLE = new Set([
  status.UNKNOWN,
  status.DEADLINE_EXCEEDED,
  status.RESOURCE_EXHAUSTED,
  status.UNIMPLEMENTED,
  status.INTERNAL,
  status.UNAVAILABLE,
  status.DATA_LOSS,
]);

/**
 * One JSON log line per call, when it ends: `method`, `code` (its name) and `ms` (from the
 * call's arrival), plus `details` for an error. Debug for OK, info for a refused request,
 * warn for a service problem. Never a message's content, nor metadata (the token).
 */
export function logCalls(log: Logger): ServerInterceptor {
  return (method, call) => {
    const started = performance.now();
    let logged = false;
    const line = (code: status, details: string | undefined) => {
      if (logged) return;
      logged = true;
      const fields = { method: method.path, code: status[code] ?? String(code), ms: Math.round((performance.now() - started) * 10) / 10 };
      if (code === status.OK) log.debug(fields, "grpc call");
      else log[SERVICE_TROUBLE.has(code) ? "warn" : "info"]({ ...fields, details }, "grpc call");
    };
    const listener = new ServerListenerBuilder()
      // Every call ends here, after its status. One that ended without a status from the
      // chain was cancelled by the client, or ended by grpc-js itself: past its deadline, or
      // refused before any handler (e.g. a message over the receive limit).
      .withOnCancel(() =>
        line(
          Number(call.getDeadline()) <= Date.now() ? status.DEADLINE_EXCEEDED : status.CANCELLED,
          "ended before the service answered: cancelled by the client, or refused by grpc-js (e.g. a message over the receive limit)",
        ),
      )
      .build();
    const responder = new ResponderBuilder()
      .withStart((next) => next(listener))
      .withSendStatus((s, next) => {
        line(s.code, s.details);
        next(s);
      })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}
