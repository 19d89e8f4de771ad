// Reading what the service wrote, with an ordinary S3 client.
import { withBucketPathsWithoutSlash } from "../../src/storage/s3.js";
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";

export function s3Client(endpoint: string, accessKeyId = "chjob", secretAccessKey = "chjob-local-secret"): S3Client {
  return withBucketPathsWithoutSlash(new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId, secretAccessKey } }));
}

/** Parses `s3://bucket/key`. */
export function parseS3Uri(uri: string): { Bucket: string; Key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new Error(`not an s3 URI: ${uri}`);
  return { Bucket: m[1]!, Key: m[2]! };
}

export async function getObject(s3: S3Client, uri: string): Promise<Buffer> {
  const res = await s3.send(new GetObjectCommand(parseS3Uri(uri)));
  return Buffer.from(await res.Body!.transformToByteArray());
}

export async function objectExists(s3: S3Client, uri: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand(parseS3Uri(uri)));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

/** Every key in a bucket (s3rver lists fine without MaxKeys truncation). */
export async function listKeys(s3: S3Client, bucket: string): Promise<string[]> {
  const res = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}
