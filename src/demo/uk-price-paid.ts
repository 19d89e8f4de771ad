// Demo data: a synthetic `uk_price_paid` table with the schema of ClickHouse's UK property price paid
// example dataset (https://clickhouse.com/docs/getting-started/example-datasets/uk-price-paid) plus
// `lat`/`lon` for maps. Every row is generated inside ClickHouse by one
// `INSERT INTO ... SELECT ... FROM numbers(N)`: no row passes through Node.
//
// The rows are a pure function of `number` (sipHash64/cityHash64 with fixed keys, no rand()), so a
// given N always yields the same table. Strings are upper case like the real dataset, so the
// dataset's documented example queries (`WHERE town = 'LONDON'`) work unchanged.
//
// Distributions:
//  - town: ~60 English towns with their real county and approximate centre, weighted by rough
//    population (London, split into its postcode areas, is the heaviest);
//  - postcode1: the town's postcode area plus a district number from its real range (M1..M40,
//    LS1..LS29, SW1..SW20, ...); postcode2: digit + two letters, fixed per street;
//  - lat/lon: the town centre, moved by the postcode district's offset and the street's offset
//    (clusters like real neighbourhoods), a few km at most (bounded, so always inside England);
//  - date: uniform over 1995-01-01..2025-12-31;
//  - price: log-normal (sigma 0.4) around a median of £60k × 1.053^(years since 1995) (~£280k
//    in 2025) × the property type's factor (flat 0.75 … detached 1.6) × the town's factor (London
//    ~2–3 by area, Oxford/Cambridge ~1.7, Hull/Burnley-like towns ~0.55) × 1.1 for new builds;
//  - type: detached/semi/terraced/flat/other ≈ 24/28/29/17/2 %, in London mostly flats;
//  - is_new ≈ 10 %; duration mostly freehold, flats mostly leasehold;
//  - street: a name from a small list with a suffix (ROAD, STREET, LANE, ...); addr1 a house
//    number; addr2 `FLAT n` for flats.

/** Name of the demo table. */
export const DEMO_TABLE = "uk_price_paid";

/** An example query on the demo table (unqualified table name: run it in the table's database). */
export interface DemoQuery {
  /** Usable as a job's `query_id` (`A–Z a–z 0–9 _ -`). */
  readonly id: string;
  readonly title: string;
  readonly sql: string;
}

export const demoQueries: readonly DemoQuery[] = [
  {
    id: "avg-price-by-town",
    title: "Average price by town",
    sql: `SELECT
    town,
    county,
    count() AS sales,
    round(avg(price)) AS avg_price,
    round(median(price)) AS median_price
FROM ${DEMO_TABLE}
GROUP BY town, county
ORDER BY avg_price DESC`,
  },
  {
    id: "flat-price-trend",
    title: "Price trend per year: flats",
    sql: `SELECT
    toYear(date) AS year,
    count() AS sales,
    round(median(price)) AS median_price,
    round(avg(price)) AS avg_price
FROM ${DEMO_TABLE}
WHERE type = 'flat'
GROUP BY year
ORDER BY year`,
  },
  {
    id: "recent-sales-map",
    title: "Recent sales on a map (lat, lon, price)",
    sql: `SELECT
    lat,
    lon,
    price,
    type,
    town,
    date
FROM ${DEMO_TABLE}
WHERE date >= '2024-01-01'
ORDER BY date DESC, price DESC
LIMIT 100000`,
  },
];

interface Town {
  town: string;
  district: string;
  county: string;
  lat: number;
  lon: number;
  /** Postcode area letters, e.g. "M", "LS". */
  area: string;
  /** Postcode district numbers used, inclusive. */
  dmin: number;
  dmax: number;
  /** Relative weight: roughly population in tens of thousands. */
  weight: number;
  /** Price factor relative to the national median. */
  pf: number;
}

// prettier-ignore
const TOWNS: readonly Town[] = [
  // London, by postcode area (the town is LONDON in all of them).
  t("LONDON", "CITY OF LONDON", "GREATER LONDON", 51.5155, -0.0922, "EC", 1, 4, 3, 3.0),
  t("LONDON", "CAMDEN", "GREATER LONDON", 51.5200, -0.1200, "WC", 1, 2, 4, 3.0),
  t("LONDON", "CITY OF WESTMINSTER", "GREATER LONDON", 51.5130, -0.2100, "W", 1, 14, 45, 2.8),
  t("LONDON", "WANDSWORTH", "GREATER LONDON", 51.4600, -0.1700, "SW", 1, 20, 55, 2.5),
  t("LONDON", "LEWISHAM", "GREATER LONDON", 51.4550, -0.0400, "SE", 1, 28, 70, 1.9),
  t("LONDON", "TOWER HAMLETS", "GREATER LONDON", 51.5350, -0.0100, "E", 1, 18, 60, 1.9),
  t("LONDON", "ISLINGTON", "GREATER LONDON", 51.5800, -0.1100, "N", 1, 22, 50, 2.2),
  t("LONDON", "BRENT", "GREATER LONDON", 51.5550, -0.1900, "NW", 1, 11, 40, 2.3),
  t("BIRMINGHAM", "BIRMINGHAM", "WEST MIDLANDS", 52.4862, -1.8904, "B", 1, 45, 114, 0.85),
  t("MANCHESTER", "MANCHESTER", "GREATER MANCHESTER", 53.4808, -2.2426, "M", 1, 40, 55, 0.9),
  t("LEEDS", "LEEDS", "WEST YORKSHIRE", 53.8008, -1.5491, "LS", 1, 29, 80, 0.85),
  t("LIVERPOOL", "LIVERPOOL", "MERSEYSIDE", 53.4084, -2.9916, "L", 1, 38, 49, 0.7),
  t("SHEFFIELD", "SHEFFIELD", "SOUTH YORKSHIRE", 53.3811, -1.4701, "S", 1, 36, 56, 0.75),
  t("BRISTOL", "CITY OF BRISTOL", "CITY OF BRISTOL", 51.4545, -2.5879, "BS", 1, 16, 47, 1.2),
  t("NEWCASTLE UPON TYNE", "NEWCASTLE UPON TYNE", "TYNE AND WEAR", 54.9783, -1.6178, "NE", 1, 15, 30, 0.7),
  t("NOTTINGHAM", "CITY OF NOTTINGHAM", "CITY OF NOTTINGHAM", 52.9548, -1.1581, "NG", 1, 11, 33, 0.75),
  t("LEICESTER", "LEICESTER", "LEICESTER", 52.6369, -1.1398, "LE", 1, 5, 37, 0.8),
  t("COVENTRY", "COVENTRY", "WEST MIDLANDS", 52.4068, -1.5197, "CV", 1, 6, 37, 0.8),
  t("BRADFORD", "BRADFORD", "WEST YORKSHIRE", 53.7960, -1.7594, "BD", 1, 15, 35, 0.6),
  t("STOKE-ON-TRENT", "STOKE-ON-TRENT", "STOKE-ON-TRENT", 53.0027, -2.1794, "ST", 1, 8, 26, 0.55),
  t("WOLVERHAMPTON", "WOLVERHAMPTON", "WEST MIDLANDS", 52.5862, -2.1285, "WV", 1, 14, 26, 0.7),
  t("PLYMOUTH", "PLYMOUTH", "PLYMOUTH", 50.3755, -4.1427, "PL", 1, 9, 26, 0.8),
  t("SOUTHAMPTON", "SOUTHAMPTON", "SOUTHAMPTON", 50.9097, -1.4044, "SO", 14, 19, 25, 1.0),
  t("PORTSMOUTH", "PORTSMOUTH", "PORTSMOUTH", 50.8198, -1.0880, "PO", 1, 6, 21, 0.95),
  t("READING", "READING", "READING", 51.4543, -0.9781, "RG", 1, 6, 17, 1.35),
  t("DERBY", "DERBY", "DERBY", 52.9225, -1.4746, "DE", 1, 24, 26, 0.75),
  t("NORTHAMPTON", "WEST NORTHAMPTONSHIRE", "NORTHAMPTONSHIRE", 52.2405, -0.9027, "NN", 1, 7, 22, 0.9),
  t("LUTON", "LUTON", "LUTON", 51.8787, -0.4200, "LU", 1, 4, 22, 1.05),
  t("MILTON KEYNES", "MILTON KEYNES", "MILTON KEYNES", 52.0406, -0.7594, "MK", 1, 19, 23, 1.1),
  t("NORWICH", "NORWICH", "NORFOLK", 52.6309, 1.2974, "NR", 1, 7, 14, 0.95),
  t("BRIGHTON", "BRIGHTON AND HOVE", "BRIGHTON AND HOVE", 50.8225, -0.1372, "BN", 1, 3, 23, 1.45),
  t("HULL", "CITY OF KINGSTON UPON HULL", "CITY OF KINGSTON UPON HULL", 53.7676, -0.3274, "HU", 1, 9, 26, 0.55),
  t("OXFORD", "OXFORD", "OXFORDSHIRE", 51.7520, -1.2577, "OX", 1, 4, 15, 1.7),
  t("CAMBRIDGE", "CAMBRIDGE", "CAMBRIDGESHIRE", 52.2053, 0.1218, "CB", 1, 5, 15, 1.7),
  t("YORK", "YORK", "YORK", 53.9590, -1.0815, "YO", 1, 32, 20, 1.1),
  t("EXETER", "EXETER", "DEVON", 50.7184, -3.5339, "EX", 1, 4, 13, 1.1),
  t("GLOUCESTER", "GLOUCESTER", "GLOUCESTERSHIRE", 51.8642, -2.2382, "GL", 1, 4, 13, 0.9),
  t("CHELTENHAM", "CHELTENHAM", "GLOUCESTERSHIRE", 51.8994, -2.0783, "GL", 50, 53, 12, 1.2),
  t("BATH", "BATH AND NORTH EAST SOMERSET", "BATH AND NORTH EAST SOMERSET", 51.3811, -2.3590, "BA", 1, 2, 10, 1.6),
  t("IPSWICH", "IPSWICH", "SUFFOLK", 52.0567, 1.1482, "IP", 1, 5, 14, 0.85),
  t("COLCHESTER", "COLCHESTER", "ESSEX", 51.8959, 0.8919, "CO", 1, 7, 13, 1.05),
  t("CHELMSFORD", "CHELMSFORD", "ESSEX", 51.7356, 0.4685, "CM", 1, 3, 11, 1.25),
  t("SOUTHEND-ON-SEA", "SOUTHEND-ON-SEA", "SOUTHEND-ON-SEA", 51.5459, 0.7077, "SS", 0, 3, 18, 1.1),
  t("CANTERBURY", "CANTERBURY", "KENT", 51.2802, 1.0789, "CT", 1, 4, 6, 1.15),
  t("MAIDSTONE", "MAIDSTONE", "KENT", 51.2704, 0.5227, "ME", 14, 17, 11, 1.1),
  t("GUILDFORD", "GUILDFORD", "SURREY", 51.2362, -0.5704, "GU", 1, 5, 8, 1.8),
  t("CRAWLEY", "CRAWLEY", "WEST SUSSEX", 51.1092, -0.1872, "RH", 10, 11, 11, 1.2),
  t("WATFORD", "WATFORD", "HERTFORDSHIRE", 51.6565, -0.3903, "WD", 17, 25, 10, 1.55),
  t("SLOUGH", "SLOUGH", "SLOUGH", 51.5105, -0.5950, "SL", 1, 3, 16, 1.25),
  t("BASINGSTOKE", "BASINGSTOKE AND DEANE", "HAMPSHIRE", 51.2665, -1.0924, "RG", 21, 24, 11, 1.2),
  t("SWINDON", "SWINDON", "SWINDON", 51.5558, -1.7797, "SN", 1, 5, 22, 0.95),
  t("BOURNEMOUTH", "BOURNEMOUTH, CHRISTCHURCH AND POOLE", "BOURNEMOUTH, CHRISTCHURCH AND POOLE", 50.7192, -1.8808, "BH", 1, 11, 19, 1.15),
  t("BEDFORD", "BEDFORD", "BEDFORD", 52.1360, -0.4667, "MK", 40, 45, 10, 1.05),
  t("PETERBOROUGH", "PETERBOROUGH", "PETERBOROUGH", 52.5695, -0.2405, "PE", 1, 7, 20, 0.85),
  t("PRESTON", "PRESTON", "LANCASHIRE", 53.7632, -2.7031, "PR", 1, 5, 14, 0.65),
  t("BLACKPOOL", "BLACKPOOL", "BLACKPOOL", 53.8175, -3.0357, "FY", 1, 5, 14, 0.5),
  t("BLACKBURN", "BLACKBURN WITH DARWEN", "BLACKBURN WITH DARWEN", 53.7486, -2.4875, "BB", 1, 2, 12, 0.55),
  t("BOLTON", "BOLTON", "GREATER MANCHESTER", 53.5769, -2.4282, "BL", 1, 7, 19, 0.6),
  t("STOCKPORT", "STOCKPORT", "GREATER MANCHESTER", 53.4106, -2.1575, "SK", 1, 8, 14, 0.9),
  t("WARRINGTON", "WARRINGTON", "WARRINGTON", 53.3900, -2.5970, "WA", 1, 5, 21, 0.8),
  t("CHESTER", "CHESHIRE WEST AND CHESTER", "CHESHIRE WEST AND CHESTER", 53.1934, -2.8931, "CH", 1, 4, 12, 1.0),
  t("HUDDERSFIELD", "KIRKLEES", "WEST YORKSHIRE", 53.6458, -1.7850, "HD", 1, 9, 16, 0.65),
  t("WAKEFIELD", "WAKEFIELD", "WEST YORKSHIRE", 53.6833, -1.4977, "WF", 1, 4, 10, 0.65),
  t("DONCASTER", "DONCASTER", "SOUTH YORKSHIRE", 53.5228, -1.1285, "DN", 1, 6, 11, 0.55),
  t("MIDDLESBROUGH", "MIDDLESBROUGH", "MIDDLESBROUGH", 54.5742, -1.2350, "TS", 1, 8, 14, 0.5),
  t("SUNDERLAND", "SUNDERLAND", "TYNE AND WEAR", 54.9069, -1.3838, "SR", 1, 7, 17, 0.5),
  t("DURHAM", "COUNTY DURHAM", "DURHAM", 54.7761, -1.5733, "DH", 1, 7, 5, 0.7),
  t("CARLISLE", "CUMBERLAND", "CUMBRIA", 54.8925, -2.9329, "CA", 1, 6, 8, 0.65),
  t("LINCOLN", "LINCOLN", "LINCOLNSHIRE", 53.2307, -0.5406, "LN", 1, 6, 10, 0.75),
  t("WORCESTER", "WORCESTER", "WORCESTERSHIRE", 52.1936, -2.2216, "WR", 1, 5, 10, 0.95),
  t("TRURO", "CORNWALL", "CORNWALL", 50.2632, -5.0510, "TR", 1, 4, 2, 1.0),
];

function t(
  town: string, district: string, county: string, lat: number, lon: number,
  area: string, dmin: number, dmax: number, weight: number, pf: number,
): Town {
  return { town, district, county, lat, lon, area, dmin, dmax, weight, pf };
}

// prettier-ignore
const STREET_NAMES = [
  "HIGH", "CHURCH", "STATION", "MILL", "PARK", "VICTORIA", "QUEENS", "KINGS", "NEW", "GREEN",
  "MANOR", "WEST", "NORTH", "SCHOOL", "ALBERT", "GEORGE", "YORK", "OAK", "ELM", "MEADOW",
  "BRIDGE", "CASTLE", "MARKET", "SPRING", "WINDSOR", "ASH", "CEDAR", "BEECH", "WILLOW", "ORCHARD",
];
// prettier-ignore
const STREET_SUFFIXES = [
  "ROAD", "STREET", "LANE", "AVENUE", "CLOSE", "DRIVE", "WAY", "GARDENS", "CRESCENT", "PLACE",
  "GROVE", "TERRACE",
];
/** Letters used in the inward code of UK postcodes (no C, I, K, M, O, V). */
const INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ";

function sqlString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function sqlIdent(s: string): string {
  return "`" + s.replace(/\\/g, "\\\\").replace(/`/g, "\\`") + "`";
}

function strArray(xs: readonly string[]): string {
  return `[${xs.map(sqlString).join(", ")}]`;
}

function numArray(xs: readonly number[]): string {
  return `[${xs.map((x) => String(x)).join(", ")}]`;
}

/** The column list, in table order. */
const COLUMNS = [
  "price", "date", "postcode1", "postcode2", "type", "is_new", "duration", "addr1", "addr2",
  "street", "locality", "town", "district", "county", "lat", "lon",
] as const;

/**
 * The SQL statements, to run in order, that (re)create `uk_price_paid` (in `database` when given,
 * else in the connection's current database) and fill it with `rows` deterministic synthetic rows
 * generated inside ClickHouse. `rows = 0` leaves the table empty.
 */
export function demoTableSql(rows: number, database?: string): string[] {
  if (!Number.isSafeInteger(rows) || rows < 0) {
    throw new RangeError(`demo rows must be a non-negative integer, got ${rows}`);
  }
  if (database !== undefined && database.length === 0) {
    throw new RangeError("demo database name must not be empty");
  }
  const table = database === undefined ? sqlIdent(DEMO_TABLE) : `${sqlIdent(database)}.${sqlIdent(DEMO_TABLE)}`;
  const statements: string[] = [];
  if (database !== undefined && database !== "default") {
    statements.push(`CREATE DATABASE IF NOT EXISTS ${sqlIdent(database)}`);
  }
  statements.push(`DROP TABLE IF EXISTS ${table} SYNC`);
  statements.push(`CREATE TABLE ${table}
(
    price UInt32,
    date Date,
    postcode1 LowCardinality(String),
    postcode2 LowCardinality(String),
    type Enum8('terraced' = 1, 'semi-detached' = 2, 'detached' = 3, 'flat' = 4, 'other' = 0),
    is_new UInt8,
    duration Enum8('freehold' = 1, 'leasehold' = 2, 'unknown' = 0),
    addr1 String,
    addr2 String,
    street LowCardinality(String),
    locality LowCardinality(String),
    town LowCardinality(String),
    district LowCardinality(String),
    county LowCardinality(String),
    lat Float64,
    lon Float64
)
ENGINE = MergeTree
ORDER BY (postcode1, postcode2, addr1, addr2)`);
  if (rows > 0) statements.push(insertSql(table, rows));
  return statements;
}

function insertSql(table: string, rows: number): string {
  // Weighted choice of a town: an array holding each town's (1-based) index `weight` times.
  const pick: number[] = [];
  TOWNS.forEach((tw, i) => {
    for (let k = 0; k < tw.weight; k++) pick.push(i + 1);
  });
  // Spread around the centre, in degrees of latitude: bigger places spread further.
  const radius = TOWNS.map((tw) => +(0.008 + 0.003 * Math.sqrt(tw.weight)).toFixed(4));
  const london = TOWNS.map((tw) => (tw.town === "LONDON" ? 1 : 0));
  // Uniform in [0, 1) from 16 bits of a 64-bit hash: u(h, k) uses bits 16k..16k+15.
  const u = (h: string, k: number) => `(bitAnd(bitShiftRight(${h}, ${16 * k}), 65535) / 65536)`;
  // Bounded, roughly normal (mean 0, sd ~1, |x| < 3): the sum of three uniforms from one hash.
  const bell = (h: string) => `((${u(h, 0)} + ${u(h, 1)} + ${u(h, 2)} - 1.5) * 2)`;

  return `INSERT INTO ${table} (${COLUMNS.join(", ")})
WITH
    ${numArray(pick)} AS pick,
    ${strArray(TOWNS.map((x) => x.town))} AS towns,
    ${strArray(TOWNS.map((x) => x.district))} AS districts,
    ${strArray(TOWNS.map((x) => x.county))} AS counties,
    ${numArray(TOWNS.map((x) => x.lat))} AS lats,
    ${numArray(TOWNS.map((x) => x.lon))} AS lons,
    ${numArray(radius)} AS radii,
    ${strArray(TOWNS.map((x) => x.area))} AS areas,
    ${numArray(TOWNS.map((x) => x.dmin))} AS dmins,
    ${numArray(TOWNS.map((x) => x.dmax))} AS dmaxs,
    ${numArray(TOWNS.map((x) => x.pf))} AS pfs,
    ${numArray(london)} AS londons,
    ${strArray(STREET_NAMES)} AS street_names,
    ${strArray(STREET_SUFFIXES)} AS street_suffixes,
    ${sqlString(INWARD_LETTERS)} AS inward
SELECT
    toUInt32(greatest(5000, least(50000000,
        round(60000 * pow(1.053, days / 365.25) * type_factor * arrayElement(pfs, t) * if(is_new = 1, 1.1, 1.0)
              * exp(0.4 * sqrt(-2 * log(pu1)) * cos(2 * pi() * pu2)), -2)))) AS price,
    addDays(toDate('1995-01-01'), days) AS date,
    concat(arrayElement(areas, t), toString(d)) AS postcode1,
    concat(toString(hs % 10), substring(inward, toUInt32(bitShiftRight(hs, 8) % 20) + 1, 1),
           substring(inward, toUInt32(bitShiftRight(hs, 16) % 20) + 1, 1)) AS postcode2,
    type_name AS type,
    is_new,
    multiIf(type_name = 'flat', multiIf(hd < 90, 'leasehold', hd < 99, 'freehold', 'unknown'),
            multiIf(hd < 94, 'freehold', hd < 99, 'leasehold', 'unknown')) AS duration,
    toString(1 + hnum % if(type_name = 'flat', 60, 180)) AS addr1,
    if(type_name = 'flat', concat('FLAT ', toString(1 + bitShiftRight(hnum, 20) % 40)), '') AS addr2,
    concat(arrayElement(street_names, toUInt32(bitShiftRight(hs, 24) % length(street_names)) + 1), ' ',
           arrayElement(street_suffixes, toUInt32(bitShiftRight(hs, 32) % length(street_suffixes)) + 1)) AS street,
    if(bitShiftRight(hs, 40) % 10 < 3, arrayElement(towns, t), '') AS locality,
    arrayElement(towns, t) AS town,
    arrayElement(districts, t) AS district,
    arrayElement(counties, t) AS county,
    round(arrayElement(lats, t) + arrayElement(radii, t) * (0.8 * ${bell("hdist")} + 0.3 * ${bell("hs")})
          + 0.0004 * (${u("hnum", 3)} - 0.5), 6) AS lat,
    round(arrayElement(lons, t) + arrayElement(radii, t) / cos(radians(arrayElement(lats, t)))
          * (0.8 * ${bell("bitRotateLeft(hdist, 24)")} + 0.3 * ${bell("bitRotateLeft(hs, 24)")})
          + 0.0006 * (${u("hnum", 2)} - 0.5), 6) AS lon
FROM
(
    SELECT
        number,
        sipHash64(number, 1) AS h1,
        arrayElement(pick, toUInt32(h1 % length(pick)) + 1) AS t,
        arrayElement(dmins, t) + toUInt32(bitShiftRight(h1, 20) % (arrayElement(dmaxs, t) - arrayElement(dmins, t) + 1)) AS d,
        -- the postcode district and the street within it fix the street name, postcode2 and location
        cityHash64(t, d) AS hdist,
        cityHash64(t, d, bitShiftRight(h1, 40) % 300) AS hs,
        sipHash64(number, 2) AS h2,
        toUInt32(h2 % 11323) AS days, -- 1995-01-01 + 0..11322 = 1995-01-01..2025-12-31
        bitShiftRight(h2, 16) % 1000 AS ht,
        if(arrayElement(londons, t) = 1,
           multiIf(ht < 50, 'detached', ht < 170, 'semi-detached', ht < 450, 'terraced', ht < 980, 'flat', 'other'),
           multiIf(ht < 240, 'detached', ht < 520, 'semi-detached', ht < 810, 'terraced', ht < 980, 'flat', 'other')) AS type_name,
        multiIf(type_name = 'flat', 0.75, type_name = 'terraced', 0.85, type_name = 'semi-detached', 1.0,
                type_name = 'detached', 1.6, 1.2) AS type_factor,
        toUInt8(bitShiftRight(h2, 32) % 100 < 10) AS is_new,
        bitShiftRight(h2, 40) % 100 AS hd,
        sipHash64(number, 3) AS hp,
        (bitAnd(hp, 1048575) + 1) / 1048577 AS pu1, -- (0, 1): log() stays finite
        bitAnd(bitShiftRight(hp, 20), 1048575) / 1048576 AS pu2,
        sipHash64(number, 4) AS hnum
    FROM numbers(${rows})
)`;
}
