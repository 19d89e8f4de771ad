// The gRPC server: JobService, Health and reflection on one port.
import { readFile } from "node:fs/promises";
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { JobService } from "../../gen/chjob/v1/job_service_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { reflectionPackage, serviceDefinition, type ServiceHandlers } from "./bridge.js";
import { requireToken } from "./auth.js";
import type { HealthState } from "./health.js";
import type { Logger } from "../log.js";
import { ConfigurationConflictError } from "../errors.js";

export interface GrpcServerOptions {
  address: string;
  authToken: string | undefined;
  tls: { certFile: string; keyFile: string } | undefined;
  /** Largest request accepted; larger ones get RESOURCE_EXHAUSTED from grpc-js. */
  maxReceiveBytes: number;
  jobService: ServiceHandlers<typeof JobService>;
  health: HealthState;
  /** Takes grpc-js's own log lines (else it writes them to stderr in its own format). */
  log?: Logger;
  /** grpc-js server interceptors, the first nearest the network (telemetry: ../telemetry). */
  interceptors?: grpc.ServerInterceptor[];
}

export interface RunningGrpcServer {
  server: grpc.Server;
  /** host:port actually bound (port 0 resolved). */
  address: string;
  /** Stops taking calls and waits for open ones (streams end when their jobs do); forces after `forceAfterMs`. */
  stop(forceAfterMs: number): Promise<void>;
}

export async function startGrpcServer(opts: GrpcServerOptions): Promise<RunningGrpcServer> {
  if (opts.log) routeGrpcLogs(opts.log);
  const server = new grpc.Server({
    "grpc.max_receive_message_length": opts.maxReceiveBytes,
    "grpc.keepalive_permit_without_calls": 1,
    interceptors: opts.interceptors ?? [],
  });
  const jobs = opts.authToken ? requireToken(opts.jobService, opts.authToken) : opts.jobService;
  server.addService(serviceDefinition(JobService), jobs as unknown as grpc.UntypedServiceImplementation);
  // Health and reflection stay open without the token: probes and tools
  // (grpcurl, buf curl) need them, and they reveal no job or data.
  server.addService(serviceDefinition(Health), opts.health.handlers() as unknown as grpc.UntypedServiceImplementation);
  new ReflectionService(reflectionPackage([JobService, Health]) as never).addToServer(server);

  const credentials = opts.tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: await readFile(opts.tls.certFile), private_key: await readFile(opts.tls.keyFile) }], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.address, credentials, (err, p) => (err ? reject(bindError(opts.address, err)) : resolve(p))),
  );
  const host = opts.address.slice(0, opts.address.lastIndexOf(":"));
  return {
    server,
    address: `${host}:${port}`,
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
