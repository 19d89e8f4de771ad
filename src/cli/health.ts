// `chjob health`: asks the service's grpc.health.v1.Health/Check and exits 0 only when the answer
// is SERVING (the container's HEALTHCHECK, a script's readiness probe). Health needs no token.
// Exit codes: 0 SERVING; 1 anything else (NOT_SERVING while starting or draining, an unknown
// --service, no answer within --timeout, the service unreachable); 3 usage errors.
import { readFileSync } from "node:fs";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type HealthCheckRequest,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Serving,
} from "../../gen/grpc/health/v1/health_pb.js";
import { DEFAULT_GRPC_ADDRESS } from "../config/defaults.js";
import { parseDuration } from "../durations.js";
import { CliError, type ConnectionOptions, dialAddress, environment, reason } from "./connection.js";

export const HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check";
export const DEFAULT_HEALTH_TIMEOUT = "2s";

export interface HealthOptions extends Omit<ConnectionOptions, "token"> {
  service?: string;
  timeout?: string;
}

/**
 * The channel credentials: --ca or --tls as for the other commands. Without either, a service
 * configured here with CHJOB_TLS_CERT (the environment or ./.env, as `chjob serve` reads them)
 * is asked over TLS without checking its certificate: the probe asks whether this machine's
 * service answers, not who it is (its certificate may name a host other than the address dialled).
 */
function credentials(opts: HealthOptions, tlsCert: string | undefined): grpc.ChannelCredentials {
  if (opts.ca !== undefined) {
    let ca: Buffer;
    try {
      ca = readFileSync(opts.ca);
    } catch (err) {
      throw new CliError(`--ca: cannot read ${opts.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return grpc.credentials.createSsl(ca);
  }
  if (opts.tls) return grpc.credentials.createSsl();
  if (tlsCert) return grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false });
  return grpc.credentials.createInsecure();
}

function check(client: grpc.Client, service: string, timeoutMs: number): Promise<HealthCheckResponse> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      HEALTH_CHECK_PATH,
      (req: HealthCheckRequest) => Buffer.from(toBinary(HealthCheckRequestSchema, req)),
      (buf: Buffer) => fromBinary(HealthCheckResponseSchema, buf),
      create(HealthCheckRequestSchema, { service }),
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, res) => (err || !res ? reject(err ?? new Error("no answer")) : resolve(res)),
    ),
  );
}

export async function healthCommand(opts: HealthOptions): Promise<number> {
  const timeout = opts.timeout ?? DEFAULT_HEALTH_TIMEOUT;
  const timeoutMs = parseDuration(timeout);
  if (timeoutMs === undefined || timeoutMs <= 0) throw new CliError(`--timeout: "${timeout}" is not a duration such as 2s or 500ms`);
  const env = environment();
  const address = dialAddress(opts.address ?? (env.CHJOB_GRPC_ADDRESS?.trim() || DEFAULT_GRPC_ADDRESS));
  const service = opts.service ?? "";
  const client = new grpc.Client(address, credentials(opts, env.CHJOB_TLS_CERT?.trim() || undefined));
  try {
    const res = await check(client, service, timeoutMs);
    process.stdout.write(`${Serving[res.status] ?? res.status}\n`);
    return res.status === Serving.SERVING ? 0 : 1;
  } catch (err) {
    const e = err as Partial<grpc.ServiceError>;
    const what = service ? `the health of ${service} at ${address}` : `the health of the chjob service at ${address}`;
    let why: string;
    if (e.code === grpc.status.DEADLINE_EXCEEDED) why = `no answer within ${timeout}`;
    else if (e.code === grpc.status.NOT_FOUND) why = `the service does not know "${service}"`;
    else why = reason(e.details || e.message || String(err));
    process.stderr.write(`chjob: cannot get ${what} (${why})\n`);
    return 1;
  } finally {
    client.close();
  }
}
