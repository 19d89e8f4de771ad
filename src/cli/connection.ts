// The connection options every client command shares (--address, --token, --tls,
// --ca), the connection check, and how gRPC errors become one line and an exit code.
import { readFileSync } from "node:fs";
import { status, type ServiceError } from "@grpc/grpc-js";
import { Option, type Command } from "commander";
import { JobClient } from "../client.js";
import { DEFAULT_GRPC_ADDRESS } from "../config/defaults.js";
import { loadEnv, type Env } from "../config/index.js";

/** Exit codes of the client commands (README "The chjob command"). */
export const EXIT = { DONE: 0, FAILED: 1, CANCELLED: 2, USAGE: 3, INTERRUPTED: 130 } as const;

/** How long the service gets to answer the first call before the command gives up. */
export const CONNECT_TIMEOUT_MS = 3000;
/** Deadline of unary calls once connected. */
export const CALL_TIMEOUT_MS = 30_000;

/** An error the command reports as one line on stderr, then exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.USAGE,
  ) {
    super(message);
  }
}

// grpc-js sends the host as TLS server name even when it is an IP address, and node
// warns about that (DEP0123) on stderr: noise for `--tls --address 127.0.0.1:…`.
const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
process.emitWarning = ((warning: unknown, ...rest: unknown[]) => {
  const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
  if (code === "DEP0123") return;
  emitWarning(warning, ...rest);
}) as typeof process.emitWarning;

export interface ConnectionOptions {
  address?: string;
  token?: string;
  tls?: boolean;
  ca?: string;
}

/** --address, --token (unless `token` is false: `chjob health` needs none), --tls and --ca. */
export function addConnectionOptions(cmd: Command, { token = true } = {}): Command {
  cmd.addOption(new Option("--address <host:port>", `the service's address (default: CHJOB_GRPC_ADDRESS, else ${DEFAULT_GRPC_ADDRESS})`));
  if (token) cmd.addOption(new Option("--token <token>", "bearer token, when the service has CHJOB_AUTH_TOKEN (default: CHJOB_AUTH_TOKEN)"));
  return cmd
    .addOption(new Option("--tls", "connect with TLS (the service has CHJOB_TLS_CERT/CHJOB_TLS_KEY)"))
    .addOption(new Option("--ca <file>", "PEM file of the CA that signed the service's certificate (implies --tls)"));
}

/** The environment the defaults come from: ./.env overlaid by the real environment, like `chjob serve`. */
export function environment(): Env {
  try {
    return loadEnv(process.cwd(), process.env);
  } catch {
    return process.env;
  }
}

export interface Target {
  address: string;
  client: JobClient;
}

/** The address to dial for a listen address: `0.0.0.0`/`[::]` (listen on all) mean this machine. */
export function dialAddress(address: string): string {
  return address.replace(/^0\.0\.0\.0(?=:)/, "127.0.0.1").replace(/^\[::\](?=:)/, "[::1]");
}

/** Builds the client from the options and checks that the service answers (within CONNECT_TIMEOUT_MS). */
export async function connect(opts: ConnectionOptions): Promise<Target> {
  const env = environment();
  const address = dialAddress(opts.address ?? (env.CHJOB_GRPC_ADDRESS?.trim() || DEFAULT_GRPC_ADDRESS));
  const token = opts.token ?? (env.CHJOB_AUTH_TOKEN?.trim() || undefined);
  let tls: boolean | Buffer = Boolean(opts.tls);
  if (opts.ca !== undefined) {
    try {
      tls = readFileSync(opts.ca);
    } catch (err) {
      throw new CliError(`--ca: cannot read ${opts.ca}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const client = new JobClient(address, { token, tls });
  try {
    // Not waitForReady: a refused connection or an unknown host fails at once, with
    // grpc-js's reason; a host that does not answer at all fails at the deadline.
    await client.healthCheck("", CONNECT_TIMEOUT_MS);
  } catch (err) {
    const e = err as ServiceError;
    // Any answer from a gRPC server (even "no health service") means it is reachable.
    if (e.code === status.UNAVAILABLE || e.code === status.DEADLINE_EXCEEDED) {
      client.close();
      const why = e.code === status.DEADLINE_EXCEEDED ? `no answer within ${CONNECT_TIMEOUT_MS / 1000} s` : reason(e.details);
      const tlsHint = tls ? "; check --tls/--ca: does it serve TLS with that certificate?" : "; if it serves TLS, pass --tls (and --ca)";
      throw new CliError(`cannot reach the chjob service at ${address} (${why}). Is \`chjob serve\` running there? Check --address or CHJOB_GRPC_ADDRESS${tlsHint}`);
    }
  }
  return { address, client };
}

/** grpc-js's connection failure text, shortened to its cause. */
export function reason(details: string): string {
  const cleaned = details
    .replace(/^No connection established\. Last error: (Error: )?/, "")
    .replace(/\. Resolution note:.*$/, "")
    .replace(/\s+/g, " ")
    .trim();
  return cleaned || "connection failed";
}

const HINTS: Partial<Record<status, string>> = {
  [status.UNAUTHENTICATED]: " (pass --token or set CHJOB_AUTH_TOKEN)",
};

/** A failed call as a CliError: the server's own message on one line, exit code 3. */
export function callError(err: unknown, address: string): CliError {
  if (err instanceof CliError) return err;
  const e = err as Partial<ServiceError>;
  if (typeof e.code !== "number") return new CliError((err as Error)?.message ?? String(err));
  const name = status[e.code] ?? String(e.code);
  if (e.code === status.UNAVAILABLE && /No connection established|Connection dropped|Name resolution failed/.test(e.details ?? "")) {
    return new CliError(`lost the connection to the chjob service at ${address} (${reason(e.details ?? "")})`);
  }
  const details = (e.details ?? e.message ?? "").replace(/\s+/g, " ").trim();
  return new CliError(`${name}: ${details}${HINTS[e.code] ?? ""}`);
}

/** Runs a call with the connection's error reporting. */
export async function call<T>(target: Target, fn: (client: JobClient) => Promise<T>): Promise<T> {
  try {
    return await fn(target.client);
  } catch (err) {
    throw callError(err, target.address);
  }
}
