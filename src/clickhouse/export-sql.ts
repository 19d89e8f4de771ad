// The export statement: ClickHouse writes the query's result to S3 itself.
import { quoteString } from "./sql-text.js";

export interface ExportTarget {
  /** S3 endpoint as ClickHouse reaches it, `http(s)://host[:port]`. */
  endpoint: string;
  bucket: string;
  /** Key of the export object. */
  key: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** Path-style URL of an object, as ClickHouse's s3() takes it. */
export function objectUrl(endpoint: string, bucket: string, key: string): string {
  return `${endpoint.replace(/\/+$/, "")}/${bucket}/${key}`;
}

/**
 * `INSERT INTO FUNCTION s3(...) <query>` with every s3() argument quoted. The
 * query must already be one checked statement (see checkQueryText); settings
 * such as s3_truncate_on_insert travel as query settings, not in the SQL, so a
 * SETTINGS clause of the user's own stays valid.
 */
export function exportSql(target: ExportTarget, query: string, file: ExportFile = CSV): string {
  const args = [objectUrl(target.endpoint, target.bucket, target.key), target.accessKeyId, target.secretAccessKey, file.format];
  // s3(url, key, secret, format, structure, compression): the structure comes from the query.
  if (file.compression !== "none") args.push("auto", file.compression);
  return `INSERT INTO FUNCTION s3(${args.map(quoteString).join(", ")})\n${query}`;
}

/** ClickHouse's format and compression_method of the export file. */
export interface ExportFile {
  format: string;
  compression: string;
}

const CSV: ExportFile = { format: "CSVWithNames", compression: "none" };

/** Export object key: <prefix>/<report_id>/<query_id>/result.<extension> (result.csv by default). */
export function exportKey(prefix: string, reportId: string, queryId: string, extension = "csv"): string {
  return [prefix, reportId, queryId, `result.${extension}`].filter((s) => s !== "").join("/");
}
