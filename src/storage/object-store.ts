// The object-store seam: what the runner needs from S3.
export interface ObjectLocation {
  bucket: string;
  key: string;
}

/** The bucket and key of `s3://bucket/key`; undefined for anything else. */
export function parseS3Uri(uri: string): ObjectLocation | undefined {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return m ? { bucket: m[1]!, key: m[2]! } : undefined;
}

export function s3Uri({ bucket, key }: ObjectLocation): string {
  return `s3://${bucket}/${key}`;
}

/** HTTP headers an object is served with. */
export interface ObjectHeaders {
  contentType: string;
  contentEncoding: string | undefined;
}

export interface ObjectStore {
  /**
   * Copies an object inside the store (no byte passes through this process), giving the copy
   * `headers` when set; resolves with its size. `measured`: the source's size as the caller will
   * know it (an engine's figures of the export; undefined when it could not measure): no HeadObject
   * is sent when it gives one.
   */
  copy(from: ObjectLocation, to: ObjectLocation, signal: AbortSignal, headers?: ObjectHeaders, measured?: Promise<number | undefined>): Promise<{ size: number }>;
  /** Removes an object; a missing one is not an error. */
  delete(at: ObjectLocation): Promise<void>;
  /** Size of an object, or undefined when there is none. */
  size(at: ObjectLocation): Promise<number | undefined>;
  /** Throws with S3's error when the bucket cannot be reached with these credentials. */
  checkBucket(bucket: string): Promise<void>;
  close(): void;
}

/** An S3 failure in words a person can act on: S3's code, the operation, bucket and key. */
export class ObjectStoreError extends Error {
  override readonly name = "ObjectStoreError";
  constructor(
    readonly operation: string,
    readonly s3Code: string,
    readonly at: string,
    detail: string,
  ) {
    super(`S3 ${operation} ${at}: ${s3Code}${detail ? `: ${detail}` : ""}`);
  }
}
