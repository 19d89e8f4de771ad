// Part sizes of multipart uploads, within S3's limits: at most 10,000 parts per upload, parts of
// 5 MiB to 5 GiB (the last may be smaller), objects up to 5 TiB. Two uploads make each result:
// ClickHouse's own (the export, written by its s3() table function, of a size nobody knows in
// advance) and chjob's UploadPartCopy of the export to the result object (of a known size).
import type { ClickHouseSettings } from "@clickhouse/client";

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const TiB = 1024 ** 4;

/** S3's smallest part (all but the last). */
export const S3_MIN_PART_SIZE = 5 * MiB;
/** S3's largest part. */
export const S3_MAX_PART_SIZE = 5 * GiB;
/** S3's largest object one CopyObject copies; larger ones take a multipart UploadPartCopy. */
export const S3_MAX_COPY_OBJECT_SIZE = 5 * GiB;
/** chjob's UploadPartCopy part size unless CHJOB_MULTIPART_COPY_PART_SIZE says otherwise. */
export const DEFAULT_COPY_PART_SIZE = 512 * MiB;
/** S3's most parts in one multipart upload. */
export const S3_MAX_PARTS = 10_000;
/** S3's largest object. */
export const S3_MAX_OBJECT_SIZE = 5 * TiB;

/** An object that no multipart upload can copy: above S3's 5 TiB. */
export class ObjectTooLargeError extends RangeError {
  override readonly name = "ObjectTooLargeError";
}

/**
 * The UploadPartCopy part size for an object of `size` bytes: `configured` (5 MiB to 5 GiB), raised
 * when that would take more than 10,000 parts to the smallest whole MiB that takes at most 10,000,
 * and never above 5 GiB. Throws ObjectTooLargeError for an object above 5 TiB, which S3 cannot
 * hold (its size and the limit in the message), so that nothing is copied.
 */
export function copyPartSize(size: number, configured: number): number {
  if (!Number.isSafeInteger(configured) || configured < S3_MIN_PART_SIZE || configured > S3_MAX_PART_SIZE) {
    throw new RangeError(`part size ${configured} is outside S3's ${S3_MIN_PART_SIZE}–${S3_MAX_PART_SIZE} bytes (5 MiB – 5 GiB)`);
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`object size ${size} is not a size in bytes`);
  if (size > S3_MAX_OBJECT_SIZE) {
    throw new ObjectTooLargeError(
      `the object is ${bytesText(size)} (${size} bytes), above S3's limit of 5 TiB (${S3_MAX_OBJECT_SIZE} bytes) for one object: it cannot be copied`,
    );
  }
  if (Math.ceil(size / configured) <= S3_MAX_PARTS) return configured;
  const smallest = Math.ceil(size / S3_MAX_PARTS);
  return Math.min(Math.ceil(smallest / MiB) * MiB, S3_MAX_PART_SIZE);
}

/** How many parts of `partSize` an object of `size` bytes takes. */
export function partCount(size: number, partSize: number): number {
  return Math.ceil(size / partSize);
}

/**
 * ClickHouse's part sizes for the export's own multipart upload (its s3() writes the result in
 * parts as the query produces it, so the part size cannot be chosen from the size). ClickHouse
 * (26.x, as chDB 3.4 runs it) grows the part as the upload goes: part k (from 1)
 * is s3_min_upload_part_size × factor^floor((k − 1) / threshold), at most s3_max_upload_part_size;
 * only the first may be larger, max(s3_max_single_part_upload_size, s3_min_upload_part_size) (a
 * result that fits in it is one PutObject), and an upload past s3_max_part_number (10,000) parts
 * fails. With the values below:
 *
 *   parts     1–500     8 MiB each      4,000 MiB
 *   parts   501–1000   16 MiB           8,000 MiB
 *   parts  1001–1500   32 MiB          16,000 MiB
 *   parts  1501–2000   64 MiB          32,000 MiB
 *   parts  2001–2500  128 MiB          64,000 MiB
 *   parts  2501–3000  256 MiB         128,000 MiB
 *   parts  3001–3500  512 MiB         256,000 MiB   (508,000 MiB ≈ 496 GiB after 3,500 parts)
 *   parts  3501–      1 GiB each
 *
 * 5 TiB = 5,242,880 MiB: the remaining 4,734,880 MiB take ⌈4,734,880 / 1,024⌉ = 4,624 parts of
 * 1 GiB, so 5 TiB, S3's largest object, is reached at part 8,124 of 10,000 (10,000 parts hold
 * 508,000 + 6,500 × 1,024 = 7,164,000 MiB ≈ 6.8 TiB). The first parts stay small, so a result takes
 * little memory while it uploads: ClickHouse holds each part until S3 has it (the parts in flight,
 * exportUploadSettings' `inflightParts`, and the one it is writing). 8 MiB rather than ClickHouse's
 * 16 (and a first part of 8 MiB rather than its 32) halves that memory for every result under
 * 4,000 MiB; S3 takes parts from 5 MiB. The cap of 1 GiB (ClickHouse's own default is 5 GiB, which
 * reaches 5 TiB at part 4,726 with its 16 MiB start) is the smallest power of two that still reaches
 * 5 TiB (512 MiB stops at ≈ 3.9 TiB), and bounds each part in flight to 1 GiB instead of 5 GiB.
 * Pinned for every export, so a server profile that changed them cannot make a big export fail at
 * part 10,000.
 */
export const CLICKHOUSE_UPLOAD_PART_SETTINGS = {
  s3_min_upload_part_size: String(8 * MiB),
  s3_max_single_part_upload_size: String(8 * MiB),
  s3_upload_part_size_multiply_factor: "2",
  s3_upload_part_size_multiply_parts_count_threshold: "500",
  s3_max_upload_part_size: String(1 * GiB),
} as const satisfies ClickHouseSettings;

/**
 * s3_max_inflight_parts_for_one_file of an export on embedded chDB unless
 * CHJOB_EXPORT_INFLIGHT_PARTS says otherwise. ClickHouse's own default, 20, lets the upload
 * buffers of one export reach 20 parts: in embedded mode ClickHouse runs in the service's process,
 * and a 1 GB result (16 MiB parts, 20 in flight) raised its RSS by about 450–570 MiB; fewer parts
 * in flight take less memory and can take longer (the figures: README, "Performance"). With a
 * ClickHouse server chjob sends none unless the variable is set: the server's own settings apply.
 */
export const DEFAULT_EMBEDDED_INFLIGHT_PARTS = 2;

/**
 * The S3 upload settings of every export: the part sizes above, and, when given (a whole number ≥ 1),
 * how many parts ClickHouse uploads at once while it goes on writing the next. Each part in flight
 * is a buffer of its size, so this bounds the export's memory; fewer parts in flight can slow an
 * upload to a distant S3.
 */
export function exportUploadSettings(inflightParts: number | undefined): ClickHouseSettings {
  return {
    ...CLICKHOUSE_UPLOAD_PART_SETTINGS,
    ...(inflightParts === undefined ? {} : { s3_max_inflight_parts_for_one_file: String(inflightParts) }),
  };
}

/** `5.50 TiB`, `12.0 MiB`: a size for an error message. */
function bytesText(n: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(2)} ${units[u]}`;
}
