// At start, ClickHouse writes one tiny object to the export location: the one
// check that ClickHouse itself (not only chjob) reaches S3 with these
// credentials, e.g. through DEKART_CLICKHOUSE_S3_ENDPOINT from a container.
// It only warns: jobs are served either way, and the warning says what to fix.
import { randomUUID } from "node:crypto";
import { describeClickHouseError, type ClickHouseEngine } from "../clickhouse/engine.js";
import { exportSql, objectUrl } from "../clickhouse/export-sql.js";
import type { S3Location } from "../config/types.js";
import type { Logger } from "../log.js";
import type { Redactor } from "../redact.js";
import type { ObjectStore } from "../storage/object-store.js";

export interface ExportProbe {
  engine: ClickHouseEngine;
  store: ObjectStore;
  log: Logger;
  redact: Redactor;
  clickhouseS3Endpoint: string;
  output: S3Location;
  accessKeyId: string;
  secretAccessKey: string;
  timeoutMs: number;
}

export async function probeExportPath(p: ExportProbe): Promise<void> {
  const id = randomUUID();
  const at = { bucket: p.output.bucket, key: [p.output.prefix, ".chjob-check", `${id}.csv`].filter((s) => s !== "").join("/") };
  const url = objectUrl(p.clickhouseS3Endpoint, at.bucket, at.key);
  const sql = exportSql({ endpoint: p.clickhouseS3Endpoint, ...at, accessKeyId: p.accessKeyId, secretAccessKey: p.secretAccessKey }, "SELECT 1 AS chjob_check");
  const ref = { jobId: id, url };
  const hint = "jobs will fail until it can: check DEKART_CLICKHOUSE_S3_ENDPOINT (the endpoint as ClickHouse reaches it) and the S3 credentials";
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), p.timeoutMs)));
  const running = p.engine.runExport(ref, sql, { s3_truncate_on_insert: 1 }).then(
    async (ended) => {
      await ended.figures;
      return "ok" as const;
    },
    (err: unknown) => err,
  );
  const outcome = await Promise.race([running, timedOut]);
  clearTimeout(timer);
  if (outcome === "ok") {
    await p.store.delete(at).catch(() => undefined);
    p.log.info({ url }, "ClickHouse writes to the export location");
  } else if (outcome === "timeout") {
    await p.engine.kill(ref).catch(() => undefined);
    p.log.warn({ url, waitedMs: p.timeoutMs }, `ClickHouse did not manage to write to ${url} in ${p.timeoutMs / 1000} s; ${hint}`);
  } else {
    p.log.warn({ url, err: p.redact(describeClickHouseError(outcome)) }, `ClickHouse cannot write to ${url}; ${hint}`);
  }
}
