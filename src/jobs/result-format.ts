// What a result file is: ClickHouse's format, the file's extension, and the
// Content-Type / Content-Encoding of the object. The default (CSVWithNames,
// uncompressed) keeps Dekart's `result.csv` and `<job id>.csv`.
import { Compression, Format } from "../../gen/chjob/v1/job_service_pb.js";
import { InvalidArgumentError } from "../errors.js";

export { Compression, Format };

interface FormatInfo {
  /** ClickHouse's name of the format. */
  clickhouse: string;
  extension: string;
  contentType: string;
}

const FORMATS: Record<Exclude<Format, Format.UNSPECIFIED>, FormatInfo> = {
  [Format.CSV_WITH_NAMES]: { clickhouse: "CSVWithNames", extension: "csv", contentType: "text/csv; charset=utf-8; header=present" },
  [Format.PARQUET]: { clickhouse: "Parquet", extension: "parquet", contentType: "application/vnd.apache.parquet" },
  [Format.JSON_EACH_ROW]: { clickhouse: "JSONEachRow", extension: "jsonl", contentType: "application/x-ndjson" },
  [Format.ARROW]: { clickhouse: "Arrow", extension: "arrow", contentType: "application/vnd.apache.arrow.file" },
  [Format.TSV_WITH_NAMES]: { clickhouse: "TSVWithNames", extension: "tsv", contentType: "text/tab-separated-values; charset=utf-8" },
};

interface CompressionInfo {
  /** ClickHouse's compression_method argument of s3(). */
  clickhouse: string;
  /** Appended to the file name. */
  suffix: string;
  /** Content-Encoding of the object. */
  encoding: string | undefined;
}

const COMPRESSIONS: Record<Exclude<Compression, Compression.UNSPECIFIED>, CompressionInfo> = {
  [Compression.NONE]: { clickhouse: "none", suffix: "", encoding: undefined },
  [Compression.GZIP]: { clickhouse: "gzip", suffix: ".gz", encoding: "gzip" },
  [Compression.ZSTD]: { clickhouse: "zstd", suffix: ".zst", encoding: "zstd" },
};

/** A resolved choice: never UNSPECIFIED. */
export interface ResultKind {
  format: Exclude<Format, Format.UNSPECIFIED>;
  compression: Exclude<Compression, Compression.UNSPECIFIED>;
}

export const DEFAULT_KIND: ResultKind = { format: Format.CSV_WITH_NAMES, compression: Compression.NONE };

/** The request's format and compression with defaults filled in; INVALID_ARGUMENT for what cannot be. */
export function resolveKind(format: Format, compression: Compression): ResultKind {
  if (!(format in Format)) throw new InvalidArgumentError("format", `${format} is not a format; use one of ${names(Format, "FORMAT_")}`);
  if (!(compression in Compression)) throw new InvalidArgumentError("compression", `${compression} is not a compression; use one of ${names(Compression, "COMPRESSION_")}`);
  const kind: ResultKind = {
    format: format === Format.UNSPECIFIED ? Format.CSV_WITH_NAMES : format,
    compression: compression === Compression.UNSPECIFIED ? Compression.NONE : compression,
  };
  if (kind.format === Format.PARQUET && kind.compression !== Compression.NONE) {
    throw new InvalidArgumentError(
      "compression",
      "must be NONE (or unset) with PARQUET: Parquet compresses inside the file (zstd), and an outer compression would make it unreadable to Parquet readers",
    );
  }
  return kind;
}

/** `csv`, `csv.gz`, `parquet`, `jsonl.zst`, … */
export function fileExtension(kind: ResultKind): string {
  return FORMATS[kind.format].extension + COMPRESSIONS[kind.compression].suffix;
}

export function clickhouseFormat(kind: ResultKind): { format: string; compression: string } {
  return { format: FORMATS[kind.format].clickhouse, compression: COMPRESSIONS[kind.compression].clickhouse };
}

/** The result object's Content-Type, and Content-Encoding when the whole file is compressed. */
export function objectHeaders(kind: ResultKind): { contentType: string; contentEncoding: string | undefined } {
  return { contentType: FORMATS[kind.format].contentType, contentEncoding: COMPRESSIONS[kind.compression].encoding };
}

function names(e: object, prefix: string): string {
  return Object.keys(e)
    .filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED")
    .map((k) => prefix + k)
    .join(", ");
}
