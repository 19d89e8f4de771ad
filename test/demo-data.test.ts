// Runs the demo table's SQL in real chDB (embedded ClickHouse) and checks the generated data.
// chDB binds one data path per process: one temp dir for the whole file, client closed at the end.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@clickhouse/client";
import { createChdbConnection } from "chdb/connection";
import { DEMO_TABLE, demoQueries, demoTableSql } from "../src/demo/uk-price-paid.js";

const dir = mkdtempSync(join(tmpdir(), "chjob-demo-data-"));
// chdb implements @clickhouse/client-common's Connection; @clickhouse/client bundles its own
// (structurally equal, nominally different) copy of that type.
type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>["connection"];
const client = createClient({ connection: createChdbConnection({ path: dir }) as unknown as ClientConnection });

const N = 100_000;

async function run(statements: string[]): Promise<number> {
  const t0 = performance.now();
  for (const query of statements) await client.command({ query });
  return performance.now() - t0;
}

async function rows<T>(query: string): Promise<T[]> {
  const rs = await client.query({ query, format: "JSONEachRow" });
  return rs.json<T>();
}

async function one<T>(query: string): Promise<T> {
  const r = await rows<T>(query);
  assert.is(r.length, 1, `one row from: ${query}`);
  return r[0]!;
}

// 64-bit integers are compared as strings (JSON numbers would lose precision).
const checksum = () =>
  one<{ n: string; sum: string }>(
    `SELECT toString(count()) AS n, toString(sum(cityHash64(*))) AS sum FROM ${DEMO_TABLE}`,
  );

test.after(async () => {
  await client.close();
  rmSync(dir, { recursive: true, force: true });
});

test("demoTableSql: statement shape and argument checks", () => {
  const sql = demoTableSql(10);
  assert.is(sql.length, 3);
  assert.match(sql[0]!, /^DROP TABLE IF EXISTS `uk_price_paid`/);
  assert.match(sql[1]!, /^CREATE TABLE `uk_price_paid`/);
  assert.match(sql[2]!, /^INSERT INTO `uk_price_paid`/);
  assert.match(sql[2]!, /FROM numbers\(10\)/);
  assert.not.match(sql.join("\n"), /rand/i);
  assert.is(demoTableSql(0).length, 2, "0 rows: no INSERT");
  const inDb = demoTableSql(5, "demo");
  assert.match(inDb[0]!, /^CREATE DATABASE IF NOT EXISTS `demo`/);
  assert.ok(inDb.slice(1).every((s) => s.includes("`demo`.`uk_price_paid`")));
  assert.throws(() => demoTableSql(-1));
  assert.throws(() => demoTableSql(1.5));
  assert.throws(() => demoTableSql(Number.NaN));
  assert.is(DEMO_TABLE, "uk_price_paid");
  assert.is(demoQueries.length, 3);
  for (const q of demoQueries) {
    assert.ok(q.title.length > 0);
    assert.match(q.id, /^[A-Za-z0-9_-]{1,128}$/);
  }
});

test(`creates ${N} rows, deterministically`, async () => {
  await run(demoTableSql(N));
  const first = await checksum();
  assert.is(first.n, String(N));
  await run(demoTableSql(N));
  const second = await checksum();
  assert.equal(second, first, "same N, same data");
  // The schema is the dataset's, plus lat/lon.
  const cols = await rows<{ name: string; type: string }>(
    `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '${DEMO_TABLE}' ORDER BY position`,
  );
  assert.equal(
    cols.map((c) => c.name),
    ["price", "date", "postcode1", "postcode2", "type", "is_new", "duration", "addr1", "addr2",
      "street", "locality", "town", "district", "county", "lat", "lon"],
  );
  assert.is(cols.find((c) => c.name === "type")!.type,
    "Enum8('other' = 0, 'terraced' = 1, 'semi-detached' = 2, 'detached' = 3, 'flat' = 4)");
  const engine = await one<{ engine: string; sorting_key: string }>(
    `SELECT engine, sorting_key FROM system.tables WHERE database = currentDatabase() AND name = '${DEMO_TABLE}'`,
  );
  assert.is(engine.engine, "MergeTree");
  assert.is(engine.sorting_key, "postcode1, postcode2, addr1, addr2");
});

test("dates within 1995-01-01..2025-12-31, every year present", async () => {
  const r = await one<{ lo: string; hi: string; years: number }>(
    `SELECT toString(min(date)) AS lo, toString(max(date)) AS hi, uniqExact(toYear(date)) AS years FROM ${DEMO_TABLE}`,
  );
  assert.ok(r.lo >= "1995-01-01", r.lo);
  assert.ok(r.hi <= "2025-12-31", r.hi);
  assert.is(r.years, 31);
});

test("every town has a county, postcodes and coordinates inside England", async () => {
  const towns = await rows<{
    town: string; counties: string[]; pc: string; lat0: number; lat1: number; lon0: number; lon1: number; n: string;
  }>(`SELECT town, groupUniqArray(county) AS counties, any(postcode1) AS pc,
        min(lat) AS lat0, max(lat) AS lat1, min(lon) AS lon0, max(lon) AS lon1, toString(count()) AS n
      FROM ${DEMO_TABLE} GROUP BY town ORDER BY count() DESC`);
  assert.ok(towns.length >= 55 && towns.length <= 70, `~60 towns, got ${towns.length}`);
  assert.is(towns[0]!.town, "LONDON", "London is the heaviest");
  for (const t of towns) {
    assert.ok(t.town.length > 0);
    assert.ok(t.counties.length > 0 && t.counties.every((c) => c.length > 0), `${t.town} has a county`);
    assert.match(t.pc, /^[A-Z]{1,2}\d{1,2}$/, `${t.town} postcode1`);
    assert.ok(t.lat0 >= 49.9 && t.lat1 <= 55.9, `${t.town} lat ${t.lat0}..${t.lat1}`);
    assert.ok(t.lon0 >= -6.5 && t.lon1 <= 1.8, `${t.town} lon ${t.lon0}..${t.lon1}`);
    assert.ok(t.lat1 - t.lat0 < 0.6 && t.lon1 - t.lon0 < 1.0, `${t.town} points stay near the town`);
  }
  const bad = await one<{ n: string }>(
    `SELECT toString(countIf(NOT match(postcode2, '^[0-9][A-Z]{2}$') OR addr1 = '' OR street = '' OR price = 0)) AS n FROM ${DEMO_TABLE}`,
  );
  assert.is(bad.n, "0");
});

test("distributions: type and year drive prices, ~10% new, flats mostly leasehold", async () => {
  const byType = await rows<{ type: string; median: number; n: string }>(
    `SELECT toString(type) AS type, median(price) AS median, toString(count()) AS n FROM ${DEMO_TABLE} GROUP BY type`,
  );
  const med = (t: string) => byType.find((r) => r.type === t)!.median;
  assert.ok(med("flat") < med("detached"), `flat ${med("flat")} < detached ${med("detached")}`);
  assert.ok(med("terraced") < med("detached"));
  assert.is(byType.length, 5);

  const byYear = await rows<{ y: number; median: number }>(
    `SELECT toYear(date) AS y, median(price) AS median FROM ${DEMO_TABLE} WHERE y IN (1996, 2024) GROUP BY y ORDER BY y`,
  );
  assert.is(byYear.length, 2);
  assert.ok(byYear[1]!.median > 2.5 * byYear[0]!.median, `2024 ${byYear[1]!.median} vs 1996 ${byYear[0]!.median}`);

  const r = await one<{ is_new: number; flat_lease: number; house_free: number; london: number; median: number }>(
    `SELECT avg(is_new) AS is_new,
            avgIf(duration = 'leasehold', type = 'flat') AS flat_lease,
            avgIf(duration = 'freehold', type != 'flat') AS house_free,
            medianIf(price, town = 'LONDON') / medianIf(price, town != 'LONDON') AS london,
            medianIf(price, toYear(date) = 1995) AS median
     FROM ${DEMO_TABLE}`,
  );
  assert.ok(r.is_new > 0.08 && r.is_new < 0.12, `is_new ${r.is_new}`);
  assert.ok(r.flat_lease > 0.8, `flats leasehold ${r.flat_lease}`);
  assert.ok(r.house_free > 0.9, `houses freehold ${r.house_free}`);
  assert.ok(r.london > 1.5, `London median ×${r.london}`);
  assert.ok(r.median > 40_000 && r.median < 90_000, `1995 median ${r.median}`);
});

test("the demo queries run", async () => {
  for (const q of demoQueries) {
    const r = await rows<Record<string, unknown>>(q.sql);
    assert.ok(r.length > 0, `${q.id} returns rows`);
  }
  const map = await rows<{ lat: number; lon: number; price: number }>(demoQueries[2]!.sql);
  assert.ok(map.every((p) => typeof p.lat === "number" && typeof p.lon === "number" && p.price > 0));
});

test("1,000,000 rows: timed insert", async () => {
  const statements = demoTableSql(1_000_000);
  await run(statements.slice(0, -1));
  const ms = await run(statements.slice(-1));
  const c = await checksum();
  assert.is(c.n, "1000000");
  console.log(`  demo-data: INSERT of 1,000,000 rows took ${(ms / 1000).toFixed(2)} s`);
  assert.ok(ms < 30_000, `insert took ${ms} ms`);
});

test.run();
