// The embedded S3 server (@20minutes/s3rver): a real S3 API on loopback that
// checks signatures, loaded only in embedded mode.
import { copyFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { createRequire } from "node:module";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ConfigurationConflictError } from "../errors.js";

const require = createRequire(import.meta.url);

export interface EmbeddedS3Options {
  host: string;
  port: number;
  directory: string;
  buckets: string[];
  accessKeyId: string;
  secretAccessKey: string;
}

export interface EmbeddedS3 {
  /** `http://host:port` */
  endpoint: string;
  close(): Promise<void>;
}

/** s3rver's filesystem store, as far as keepChecksumOnCopy uses it. */
interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  copyObject(srcBucket: string, srcKey: string, destBucket: string, destKey: string, replacementMetadata: unknown): Promise<unknown>;
}

interface S3rverInstance {
  store: FilesystemStore;
  run(): Promise<AddressInfo>;
  /** With a callback last it calls http.Server#listen and returns that server (run() uses it without one). */
  listen(...args: unknown[]): Server | Promise<Server>;
  close(): Promise<void>;
  httpServer?: { closeAllConnections(): void };
}
interface Account {
  createKeyPair(id: string, secret: string): void;
  revokeAccessKey(id: string): void;
}

export async function startEmbeddedS3(opts: EmbeddedS3Options): Promise<EmbeddedS3> {
  let S3rver: new (options: object) => S3rverInstance;
  let account: Account;
  try {
    S3rver = require("@20minutes/s3rver");
    account = require("@20minutes/s3rver/lib/models/account").DUMMY_ACCOUNT;
  } catch (err) {
    throw new Error(
      `the embedded S3 server (npm package @20minutes/s3rver) could not be loaded: ${(err as Error).message}. ` +
        "Install it with `npm install @20minutes/s3rver@4`, or set AWS_ENDPOINT to an S3 server.",
    );
  }
  // Only the configured credentials are accepted: s3rver's built-in S3RVER
  // pair is revoked unless it is the configured one.
  account.createKeyPair(opts.accessKeyId, opts.secretAccessKey);
  if (opts.accessKeyId !== "S3RVER") account.revokeAccessKey("S3RVER");
  await mkdir(opts.directory, { recursive: true });
  const server = new S3rver({
    address: opts.host,
    port: opts.port,
    silent: true,
    directory: opts.directory,
    configureBuckets: opts.buckets.map((name) => ({ name })),
  });
  keepChecksumOnCopy(server.store);
  // s3rver's own listen() leaves the http server's 'error' event unhandled: a
  // busy port would crash the process with a stack trace instead of rejecting.
  const listen = server.listen.bind(server);
  server.listen = (...args: unknown[]) =>
    new Promise<Server>((resolve, reject) => {
      const http = listen(...args, () => {
        http.off("error", onError);
        resolve(http);
      }) as Server;
      const onError = (err: NodeJS.ErrnoException) => reject(listenError(opts.host, opts.port, err));
      http.once("error", onError);
    });
  const address = await server.run();
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    endpoint: `http://${host}:${address.port}`,
    close: async () => {
      const closed = server.close();
      // Clients (ClickHouse's S3 pool among them) keep idle keep-alive sockets open.
      server.httpServer?.closeAllConnections();
      await closed;
    },
  };
}

/**
 * A CopyObject that replaces the metadata (chjob's copy sets the result's Content-Type) makes
 * s3rver drop the source's stored MD5 and compute it again by reading the whole copy: seconds for
 * a 1 GB result. The copy's bytes are the source's, so its MD5 is too: it is copied beside them,
 * as s3rver itself does when the metadata is kept.
 */
function keepChecksumOnCopy(store: FilesystemStore): void {
  const copyObject = store.copyObject.bind(store);
  store.copyObject = async (srcBucket, srcKey, destBucket, destKey, replacementMetadata) => {
    const from = store.getResourcePath(srcBucket, srcKey, "object.md5");
    const to = store.getResourcePath(destBucket, destKey, "object.md5");
    if (replacementMetadata && from !== to) {
      await mkdir(dirname(to), { recursive: true });
      await copyFile(from, to).catch(() => undefined); // none stored: s3rver computes it, as before
    }
    return copyObject(srcBucket, srcKey, destBucket, destKey, replacementMetadata);
  };
}

/**
 * A listen failure is a configuration problem (`chjob serve` exits 2); the
 * message names the variable to change.
 */
function listenError(host: string, port: number, err: NodeJS.ErrnoException): Error {
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const reason =
    err.code === "EADDRINUSE"
      ? "the port is in use (another chjob? LocalStack?); set CHJOB_EMBEDDED_S3_ADDRESS to a free address (port 0 picks one), or AWS_ENDPOINT to use that S3 server"
      : err.message;
  return new ConfigurationConflictError(`CHJOB_EMBEDDED_S3_ADDRESS: cannot listen on ${address}: ${reason}`);
}
