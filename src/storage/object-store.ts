// The object-store seam: what the runner needs from S3.
export interface ObjectLocation {
  bucket: string;
  key: string;
}

export function s3Uri({ bucket, key }: ObjectLocation): string {
  return `s3://${bucket}/${key}`;
}

export interface ObjectStore {
  /** Copies an object inside the store (no byte passes through this process); resolves with its size. */
  copy(from: ObjectLocation, to: ObjectLocation, signal: AbortSignal): Promise<{ size: number }>;
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
