// ObjectStore on S3 with the AWS SDK: server-side CopyObject, and multipart
// UploadPartCopy above the single-copy limit.
import { Agent as HttpsAgent } from "node:https";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { ObjectStoreError, s3Uri, type ObjectHeaders, type ObjectLocation, type ObjectStore } from "./object-store.js";
import { copyPartSize, DEFAULT_COPY_PART_SIZE, ObjectTooLargeError, S3_MAX_COPY_OBJECT_SIZE } from "./parts.js";

export interface S3StoreOptions {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Accept unverified TLS certificates (AWS_INSECURE). */
  insecure: boolean;
  /** Objects larger than this are copied in parts; S3's own limit for one CopyObject is 5 GiB. */
  multipartThreshold?: number;
  /** Size of each copied part (5 MiB to 5 GiB), raised for an object that would take more than 10,000 (./parts.ts). */
  partSize?: number;
}

/** Deadline of calls that move no data (bucket check, delete). */
const QUICK_CALL_MS = 15_000;

export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  private readonly multipartThreshold: number;
  private readonly partSize: number;

  constructor(opts: S3StoreOptions) {
    // A part size outside S3's 5 MiB – 5 GiB throws here, not at the first big copy.
    if (opts.partSize !== undefined) copyPartSize(0, opts.partSize);
    this.client = new S3Client({
      endpoint: opts.endpoint,
      region: opts.region,
      forcePathStyle: true,
      credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey },
      requestHandler: {
        connectionTimeout: 10_000,
        // A server that accepts and then never answers must not hold a job (or
        // the start) forever. Generous: S3 may think over a large CopyObject.
        requestTimeout: 300_000,
        ...(opts.insecure ? { httpsAgent: new HttpsAgent({ rejectUnauthorized: false, keepAlive: true }) } : {}),
      },
    });
    withBucketPathsWithoutSlash(this.client);
    this.multipartThreshold = opts.multipartThreshold ?? S3_MAX_COPY_OBJECT_SIZE;
    this.partSize = opts.partSize ?? DEFAULT_COPY_PART_SIZE;
  }

  async copy(from: ObjectLocation, to: ObjectLocation, signal: AbortSignal, headers?: ObjectHeaders, measured?: Promise<number | undefined>): Promise<{ size: number }> {
    const sizing = () => (measured ?? Promise.resolve(undefined)).then((size) => size ?? this.size(from));
    if (this.multipartThreshold >= S3_MAX_COPY_OBJECT_SIZE) return this.copyWhileSizing(from, to, signal, sizing, headers);
    const size = await sizing();
    if (size === undefined) throw new ObjectStoreError("HeadObject", "NoSuchKey", s3Uri(from), "the export object is missing");
    if (size <= this.multipartThreshold) {
      await this.call("CopyObject", s3Uri(to), () =>
        this.client.send(new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: copySource(from), ...replaced(headers) }), { abortSignal: signal }),
      );
    } else {
      await this.multipartCopy(from, to, size, signal, headers);
    }
    return { size };
  }

  /**
   * With S3's own limit as the threshold, CopyObject itself refuses an object
   * that needs parts, so it starts at once beside `sizing` (the engine's measure
   * of the export, else a HeadObject): one round trip on the path of every job
   * instead of two. Only an object above the threshold whose CopyObject failed
   * is copied in parts.
   */
  private async copyWhileSizing(
    from: ObjectLocation,
    to: ObjectLocation,
    signal: AbortSignal,
    sizing: () => Promise<number | undefined>,
    headers?: ObjectHeaders,
  ): Promise<{ size: number }> {
    const single = this.call("CopyObject", s3Uri(to), () =>
      this.client.send(new CopyObjectCommand({ Bucket: to.bucket, Key: to.key, CopySource: copySource(from), ...replaced(headers) }), { abortSignal: signal }),
    ).then(
      () => undefined,
      (err: unknown) => err,
    );
    const [sized, copyError] = await Promise.all([sizing().then((size) => ({ size }), (error: unknown) => ({ error })), single]);
    if ("size" in sized && sized.size === undefined) throw new ObjectStoreError("HeadObject", "NoSuchKey", s3Uri(from), "the export object is missing");
    if (copyError === undefined) {
      if ("error" in sized) throw sized.error;
      return { size: sized.size! };
    }
    // Both failed: CopyObject's error is the one that says what went wrong with the copy.
    if ("error" in sized || sized.size! <= this.multipartThreshold) throw copyError;
    await this.multipartCopy(from, to, sized.size!, signal, headers);
    return { size: sized.size! };
  }

  private async multipartCopy(from: ObjectLocation, to: ObjectLocation, size: number, signal: AbortSignal, headers?: ObjectHeaders): Promise<void> {
    const at = s3Uri(to);
    // Raised for an object that would take more than 10,000 parts; above 5 TiB nothing is started.
    let partSize: number;
    try {
      partSize = copyPartSize(size, this.partSize);
    } catch (err) {
      if (err instanceof ObjectTooLargeError) throw new ObjectStoreError("UploadPartCopy", "EntityTooLarge", s3Uri(from), err.message);
      throw err;
    }
    const { UploadId } = await this.call("CreateMultipartUpload", at, () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, ...headersOf(headers) }), { abortSignal: signal }),
    );
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      for (let start = 0, n = 1; start < size; start += partSize, n++) {
        const end = Math.min(start + partSize, size) - 1;
        const { CopyPartResult } = await this.call("UploadPartCopy", at, () =>
          this.client.send(
            new UploadPartCopyCommand({
              Bucket: to.bucket,
              Key: to.key,
              UploadId,
              PartNumber: n,
              CopySource: copySource(from),
              CopySourceRange: `bytes=${start}-${end}`,
            }),
            { abortSignal: signal },
          ),
        );
        parts.push({ ETag: CopyPartResult?.ETag ?? "", PartNumber: n });
      }
      await this.call("CompleteMultipartUpload", at, () =>
        this.client.send(new CompleteMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, UploadId, MultipartUpload: { Parts: parts } }), {
          abortSignal: signal,
        }),
      );
    } catch (err) {
      // No half-made upload is left behind (and nothing appears at the key).
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: to.bucket, Key: to.key, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  async delete(at: ObjectLocation): Promise<void> {
    await this.quickCall("DeleteObject", s3Uri(at), (abortSignal) => this.client.send(new DeleteObjectCommand({ Bucket: at.bucket, Key: at.key }), { abortSignal }));
  }

  async size(at: ObjectLocation): Promise<number | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: at.bucket, Key: at.key }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if (err instanceof S3ServiceException && (err.name === "NotFound" || err.name === "NoSuchKey")) return undefined;
      throw toStoreError("HeadObject", s3Uri(at), err);
    }
  }

  async checkBucket(bucket: string): Promise<void> {
    // ListObjectsV2 rather than HeadBucket: same permission (s3:ListBucket), but
    // its errors carry S3's code (NoSuchBucket, SignatureDoesNotMatch, ...). The
    // prefix matches nothing, so the answer stays small (and s3rver's truncated
    // listings, which fail, are avoided).
    await this.quickCall("ListObjectsV2", `s3://${bucket}`, (abortSignal) =>
      this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: ".chjob-bucket-check/", MaxKeys: 1 }), { abortSignal }),
    );
  }

  close(): void {
    this.client.destroy();
  }

  /** A call that moves no data: it gets QUICK_CALL_MS to answer. */
  private async quickCall<T>(operation: string, at: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(QUICK_CALL_MS);
    try {
      return await this.call(operation, at, () => fn(signal));
    } catch (err) {
      if (signal.aborted) throw new ObjectStoreError(operation, "Timeout", at, `no answer within ${QUICK_CALL_MS / 1000} s (is the S3 endpoint reachable?)`);
      throw err;
    }
  }

  private async call<T>(operation: string, at: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(operation, at, err);
    }
  }
}

/**
 * Bucket-level requests go to `/<bucket>/`; s3rver computes their signature
 * over `/<bucket>` and rejects them. `/<bucket>` is valid path-style on every S3.
 */
export function withBucketPathsWithoutSlash(client: S3Client): S3Client {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { path?: string };
      if (typeof request.path === "string" && /^\/[^/]+\/$/.test(request.path)) request.path = request.path.slice(0, -1);
      return next(args);
    },
    { step: "build", name: "bucketPathWithoutTrailingSlash" },
  );
  return client;
}

function copySource({ bucket, key }: ObjectLocation): string {
  return `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
}

/** S3's error code and message, or the network error, without request details. */
function toStoreError(operation: string, at: string, err: unknown): Error {
  if (err instanceof Error && err.name === "AbortError") return err;
  if (err instanceof S3ServiceException) {
    const status = err.$metadata?.httpStatusCode;
    // HEAD responses have no body, so the SDK knows only the HTTP status.
    const code = err.name === "UnknownError" || err.name === "NotFound" || err.name === "Forbidden" ? statusName(status, err.name) : err.name;
    const message = err.message && err.message !== "UnknownError" && err.message !== code ? err.message : "";
    return new ObjectStoreError(operation, code, at, message);
  }
  const e = err as Error & { code?: string };
  return new ObjectStoreError(operation, e.code ?? e.name ?? "Error", at, `${e.message} (is the S3 endpoint reachable?)`);
}

function statusName(status: number | undefined, fallback: string): string {
  switch (status) {
    case 403:
      return "AccessDenied (403: wrong credentials or no permission)";
    case 404:
      return "NotFound (404)";
    case 301:
      return "PermanentRedirect (301: wrong region or endpoint)";
    default:
      return status ? `${fallback} (HTTP ${status})` : fallback;
  }
}

function headersOf(h: ObjectHeaders | undefined): { ContentType?: string; ContentEncoding?: string } {
  if (!h) return {};
  return { ContentType: h.contentType, ...(h.contentEncoding ? { ContentEncoding: h.contentEncoding } : {}) };
}

/** CopyObject keeps the source's headers unless told to replace them. */
function replaced(h: ObjectHeaders | undefined): { MetadataDirective?: "REPLACE"; ContentType?: string; ContentEncoding?: string } {
  return h ? { MetadataDirective: "REPLACE", ...headersOf(h) } : {};
}
