// The gRPC server: JobService, Health and reflection on one port.
import { readFile } from "node:fs/promises";
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { JobService } from "../../gen/chjob/v1/job_service_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { withPort } from "../address.js";
import { ConfigurationConflictError } from "../errors.js";
import type { Logger } from "../log.js";
import { addService, reflectionPackage, type ServiceImpl } from "./bridge.js";
import type { HealthState } from "./health.js";
import { interceptorChain, type ServerInterceptor } from "./interceptors.js";

export interface GrpcServerOptions {
  address: string;
  /** CHJOB_AUTH_TOKEN. */
  authToken: string | undefined;
  tls: { certFile: string; keyFile: string } | undefined;
  /** CHJOB_MAX_QUERY_BYTES: the receive limit is set well above it (see receiveLimit). */
  maxQueryBytes: number;
  jobService: ServiceImpl<typeof JobService>;
  health: HealthState;
  /** Takes the call log and grpc-js's own log lines (else grpc-js writes them to stderr in its own format). */
  log: Logger;
  /** Interceptors every call goes through before the call log and the token check (metrics, tracing): see interceptorChain. */
  interceptors?: ServerInterceptor[];
}

export interface RunningGrpcServer {
  server: grpc.Server;
  /** host:port actually bound (port 0 resolved). */
  address: string;
  /** Stops taking calls and waits for open ones (streams end when their jobs do); forces after `forceAfterMs`. */
  stop(forceAfterMs: number): Promise<void>;
}

const MiB = 1024 ** 2;

/**
 * The largest request message grpc-js accepts; a larger one ends RESOURCE_EXHAUSTED before any
 * handler sees it. It is far above CHJOB_MAX_QUERY_BYTES, so that a query_text over that limit
 * reaches CreateJob and gets INVALID_ARGUMENT naming the field and the limit (README, "Limits").
 */
export function receiveLimit(maxQueryBytes: number): number {
  return Math.max(16 * MiB, 4 * maxQueryBytes + MiB);
}

/** JobService, Health and reflection on one port, every call through one interceptor chain (interceptors.ts). */
export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  routeGrpcLogs(opts.log);
  const server = new grpc.Server({
    "grpc.max_receive_message_length": receiveLimit(opts.maxQueryBytes),
    "grpc.keepalive_permit_without_calls": 1,
    interceptors: interceptorChain({ log: opts.log, authToken: opts.authToken, extra: opts.interceptors }),
  });
  addService(server, JobService, opts.jobService, opts.log);
  addService(server, Health, opts.health.service(), opts.log);
  new ReflectionService(reflectionPackage([JobService, Health]) as never).addToServer(server);

  const credentials = opts.tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: await readFile(opts.tls.certFile), private_key: await readFile(opts.tls.keyFile) }], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.address, credentials, (err, p) => (err ? reject(bindError(opts.address, err)) : resolve(p))),
  );
  return {
    server,
    address: withPort(opts.address, port),
    stop: (forceAfterMs) =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, forceAfterMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/**
 * A listen failure is a configuration problem (`chjob serve` exits 2); the
 * message names the variable to change.
 */
function bindError(address: string, err: Error): Error {
  // grpc-js words it "No address added out of total 1 resolved errors: [listen EADDRINUSE: …]".
  const reason = /errors: \[(.+)\]$/s.exec(err.message)?.[1] ?? err.message;
  const inUse = /EADDRINUSE|address already in use/i.test(reason);
  return new ConfigurationConflictError(
    `CHJOB_GRPC_ADDRESS: cannot listen on ${address}: ` +
      (inUse ? "the port is in use (another chjob?); set CHJOB_GRPC_ADDRESS to a free address" : reason),
  );
}

/**
 * grpc-js's logger (process-wide) into ours, as JSON lines like every other. Its
 * "No address added out of total N resolved" comes before the bind error that
 * bindError words for people, so it goes to debug.
 */
function routeGrpcLogs(log: Logger): void {
  const line = (args: unknown[]) => format(...args);
  grpc.setLogger({
    error: (...args: unknown[]) => {
      const msg = line(args);
      if (/^No address added/.test(msg)) log.debug({ grpc: msg }, "grpc-js: bind failed");
      else log.error({ grpc: msg }, "grpc-js error");
    },
    info: (...args: unknown[]) => log.info({ grpc: line(args) }, "grpc-js"),
    debug: (...args: unknown[]) => log.debug({ grpc: line(args) }, "grpc-js"),
  });
}
