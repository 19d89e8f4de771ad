// result_url: presigned GETs of result objects (CHJOB_PRESIGN_TTL). Signing is local
// (SigV4 query signing with the service's S3 credentials): no request goes to S3.
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { S3RequestPresigner } from "@aws-sdk/s3-request-presigner";
import type { ObjectLocation } from "./object-store.js";

export interface UrlSigner {
  /** A GET URL of the object that needs no credentials, valid for the signer's lifetime from now. */
  presignGet(at: ObjectLocation): Promise<string>;
}

export interface S3UrlSignerOptions {
  /** The endpoint clients reach, `http(s)://host[:port]` (CHJOB_PUBLIC_S3_ENDPOINT, else the service's): the URL's origin. */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Lifetime of each URL, whole seconds from 1 to 604800 (SigV4's 7 days). */
  ttlSeconds: number;
}

/** SigV4's longest presigned URL, in seconds (7 days). */
export const MAX_PRESIGN_SECONDS = 604_800;

/**
 * Path-style URLs signed by the S3 presigner of the AWS SDK, given the request itself: the
 * SDK's getSignedUrl runs a whole client's middleware for every URL (about 15 times slower,
 * which a ListJobs page of 1000 DONE jobs would feel).
 */
export class S3UrlSigner implements UrlSigner {
  private readonly presigner: S3RequestPresigner;
  private readonly origin: URL;
  private readonly ttlSeconds: number;

  constructor(opts: S3UrlSignerOptions) {
    if (!Number.isInteger(opts.ttlSeconds) || opts.ttlSeconds < 1 || opts.ttlSeconds > MAX_PRESIGN_SECONDS) {
      throw new RangeError(`a presigned URL's lifetime must be 1 to ${MAX_PRESIGN_SECONDS} whole seconds, not ${opts.ttlSeconds}`);
    }
    this.ttlSeconds = opts.ttlSeconds;
    this.origin = new URL(opts.endpoint);
    this.presigner = new S3RequestPresigner({
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      region: opts.region,
      sha256: NodeSha256,
    });
  }

  async presignGet(at: ObjectLocation): Promise<string> {
    const path = `/${awsEscape(at.bucket)}/${at.key.split("/").map(awsEscape).join("/")}`;
    const signed = await this.presigner.presign(
      {
        method: "GET",
        protocol: this.origin.protocol,
        hostname: this.origin.hostname,
        port: this.origin.port === "" ? undefined : Number(this.origin.port),
        path,
        query: {},
        // Only the host is signed: a browser or any HTTP client sends it as it is.
        headers: { host: this.origin.host },
      },
      { expiresIn: this.ttlSeconds },
    );
    const query = Object.entries(signed.query ?? {})
      .map(([k, v]) => `${awsEscape(k)}=${awsEscape(String(v))}`)
      .join("&");
    return `${this.origin.protocol}//${this.origin.host}${path}?${query}`;
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof data === "string") return data;
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data);
}

/** URI-encodes as SigV4 does: everything but A-Z a-z 0-9 - _ . ~ */
function awsEscape(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The SDK's hash interface over node:crypto (SHA-256, or HMAC-SHA256 with a secret). */
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}
