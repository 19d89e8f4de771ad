// Pure functions: SQL quoting, the export statement, the query checks.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { exportKey, exportSql, objectUrl } from "../src/clickhouse/export-sql.js";
import { lexQuery, quoteString } from "../src/clickhouse/sql-text.js";
import { checkPageSize, checkPathId, checkQueryText } from "../src/jobs/validate.js";
import { createRedactor } from "../src/redact.js";

test("quoteString escapes backslashes, quotes and control characters", () => {
  assert.is(quoteString("plain"), "'plain'");
  assert.is(quoteString("a'b"), "'a\\'b'");
  assert.is(quoteString("a\\b"), "'a\\\\b'");
  assert.is(quoteString("a\\'); DROP TABLE x; --"), "'a\\\\\\'); DROP TABLE x; --'");
  assert.is(quoteString("a\nb\0c"), "'a\\nb\\0c'");
});

test("the export statement quotes every s3() argument and keeps the query on its own line", () => {
  const sql = exportSql(
    { endpoint: "http://minio:9000/", bucket: "dekart-dev-local", key: exportKey("files/x", "r1", "q_1"), accessKeyId: "AK'", secretAccessKey: "s\\e'c" },
    "SELECT 1 -- comment",
  );
  assert.is(
    sql,
    "INSERT INTO FUNCTION s3('http://minio:9000/dekart-dev-local/files/x/r1/q_1/result.csv', 'AK\\'', 's\\\\e\\'c', 'CSVWithNames')\nSELECT 1 -- comment",
  );
  assert.is(exportKey("", "r", "q"), "r/q/result.csv");
  assert.is(objectUrl("https://s3.amazonaws.com", "b-1", "k/x.csv"), "https://s3.amazonaws.com/b-1/k/x.csv");
});

test("lexQuery sees statements and words past literals and comments", () => {
  assert.equal(lexQuery("SELECT ';' AS a; -- x\n").statements, ["SELECT ';' AS a"]);
  assert.equal(lexQuery("SELECT 1; SELECT 2").statements, ["SELECT 1", "SELECT 2"]);
  assert.equal(lexQuery("SELECT $$;$$ AS h").statements, ["SELECT $$;$$ AS h"]);
  assert.equal(lexQuery("SELECT `a;b` FROM t /* ; */").statements, ["SELECT `a;b` FROM t /* ; */"]);
  assert.is(lexQuery("SELECT 'open").unterminated, "string literal");
  assert.is(lexQuery("SELECT /* /* nested */ still */ 1").unterminated, undefined);
  assert.equal(lexQuery("SELECT 'INTO OUTFILE' x").words.map((w) => w.text), ["SELECT", "X"]);
});

test("checkQueryText returns the one statement without trailing ; and blanks", () => {
  assert.is(checkQueryText("  SELECT 1 ;  ;\n ", 100), "SELECT 1");
  assert.is(checkQueryText("SELECT 'a;b'; -- done", 100), "SELECT 'a;b'");
  assert.is(checkQueryText("SELECT 1 AS format", 100), "SELECT 1 AS format");
  assert.is(checkQueryText("SELECT format FROM t", 100), "SELECT format FROM t");
  assert.throws(() => checkQueryText("SELECT 1 FORMAT CSV", 100), /FORMAT/);
  assert.throws(() => checkQueryText("SELECT 1", 3), /at most 3/);
  assert.throws(() => checkQueryText("SELECT 'ünï'", 10), /is 14 bytes/);
});

test("ids and page sizes", () => {
  assert.is(checkPathId("report_id", "A-z_09"), "A-z_09");
  assert.throws(() => checkPathId("report_id", "a b"), /report_id: contains a space/);
  assert.throws(() => checkPathId("query_id", "x\u0001"), /U\+0001/);
  assert.is(checkPageSize(0), 50);
  assert.is(checkPageSize(7), 7);
  assert.is(checkPageSize(5000), 1000);
  assert.throws(() => checkPageSize(-1), /page_size/);
});

test("the redactor hides a secret in every form it can take", () => {
  const secret = `a'b\\c"d/e`;
  const redact = createRedactor([secret, undefined, ""]);
  assert.is(redact(`x ${secret} y`), "x [HIDDEN] y");
  assert.is(redact(quoteString(secret)), "'[HIDDEN]'");
  assert.is(redact(JSON.stringify({ s: secret })), '{"s":"[HIDDEN]"}');
  assert.is(redact(encodeURIComponent(secret)), "[HIDDEN]");
  assert.is(redact(JSON.stringify({ sql: `s3('k', ${quoteString(secret)})` })), JSON.stringify({ sql: "s3('k', '[HIDDEN]')" }));
  assert.is(redact("nothing here"), "nothing here");
});

test.run();
