import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseClickHouseDsn } from "../src/clickhouse/dsn.js";
import type { ClickHouseTarget } from "../src/config/types.js";

const DATA = "/var/lib/chjob";

type Http = Extract<ClickHouseTarget, { kind: "http" }>;

function http(over: Partial<Http> & { url: string }): Http {
  return {
    kind: "http",
    username: "default",
    password: "",
    database: "default",
    connectTimeoutMs: undefined,
    skipVerify: false,
    mappedFrom: undefined,
    ...over,
  };
}

const ok: Array<[string, string | undefined, ClickHouseTarget]> = [
  ["unset", undefined, { kind: "chdb", path: `${DATA}/clickhouse` }],
  ["empty", "", { kind: "chdb", path: `${DATA}/clickhouse` }],
  ["blank", "   ", { kind: "chdb", path: `${DATA}/clickhouse` }],
  ["chdb:// alone", "chdb://", { kind: "chdb", path: `${DATA}/clickhouse` }],
  ["chdb absolute", "chdb:///abs/path", { kind: "chdb", path: "/abs/path" }],
  ["chdb relative", "chdb://data/ch", { kind: "chdb", path: "data/ch" }],
  // The field's native example, with its `port` placeholder replaced by a real port.
  [
    "field native example (9000)",
    "clickhouse://user:password@host:9000/database?dial_timeout=10s",
    http({
      url: "http://host:8123",
      username: "user",
      password: "password",
      database: "database",
      connectTimeoutMs: 10_000,
      mappedFrom: { port: 9000, to: 8123 },
    }),
  ],
  [
    "native 9440 secure skip_verify",
    "clickhouse://u:p@ch.internal:9440/db?dial_timeout=1.5s&secure=true&skip_verify=true",
    http({
      url: "https://ch.internal:8443",
      username: "u",
      password: "p",
      database: "db",
      connectTimeoutMs: 1500,
      skipVerify: true,
      mappedFrom: { port: 9440, to: 8443 },
    }),
  ],
  [
    "native 9440 implies TLS",
    "clickhouse://u:p@h:9440/db",
    http({ url: "https://h:8443", username: "u", password: "p", database: "db", mappedFrom: { port: 9440, to: 8443 } }),
  ],
  [
    "native other port kept",
    "clickhouse://u:p@h:19000/db",
    http({ url: "http://h:19000", username: "u", password: "p", database: "db" }),
  ],
  ["native no port", "clickhouse://h", http({ url: "http://h:8123" })],
  ["native no port secure", "clickhouse://h?secure=true", http({ url: "https://h:8443" })],
  ["native secure=1 on other port", "clickhouse://h:8443?secure=1", http({ url: "https://h:8443" })],
  // The field's query-parameter example, with placeholders replaced and a `/` in the password.
  [
    "field query-credentials example",
    "http://ch.example.com:8443?username=default&password=p%2Fw/dekart",
    http({ url: "http://ch.example.com:8443", password: "p/w", database: "dekart" }),
  ],
  [
    "query credentials, https, special characters",
    "https://ch.example.com?username=reader&password=a%40b%26c%3Dd+e%25/analytics",
    http({ url: "https://ch.example.com:8443", username: "reader", password: "a@b&c=d+e%", database: "analytics" }),
  ],
  [
    "query credentials, database then more parameters",
    "http://h:8123?username=u&password=pw/db&secure=true",
    http({ url: "https://h:8123", username: "u", password: "pw", database: "db" }),
  ],
  [
    "query credentials, path database",
    "http://h:8123/db?username=u&password=pw",
    http({ url: "http://h:8123", username: "u", password: "pw", database: "db" }),
  ],
  [
    "query credentials, trailing slash only",
    "http://h:8123?username=u&password=pw/",
    http({ url: "http://h:8123", username: "u", password: "pw" }),
  ],
  // The original's .env example, verbatim.
  [
    "original .env example",
    "http://dekart:dekart@localhost:8123/dekart?secure=false&skip_verify=true",
    http({ url: "http://localhost:8123", username: "dekart", password: "dekart", database: "dekart", skipVerify: true }),
  ],
  ["http secure=true upgrades", "http://u:p@h:8123/db?secure=true", http({ url: "https://h:8123", username: "u", password: "p", database: "db" })],
  ["http default port", "http://h/db", http({ url: "http://h:8123", database: "db" })],
  ["https default port", "HTTPS://h", http({ url: "https://h:8443" })],
  ["https secure=false stays https", "https://h:8443?secure=false", http({ url: "https://h:8443" })],
  ["http port 9000 is not mapped", "http://h:9000", http({ url: "http://h:9000" })],
  [
    "percent-encoded userinfo, @ in password",
    "http://us%3Aer:p%2Fa@ss#w@h:8123/d%20b",
    http({ url: "http://h:8123", username: "us:er", password: "p/a@ss#w", database: "d b" }),
  ],
  ["user without password", "http://bob@h:8123", http({ url: "http://h:8123", username: "bob" })],
  ["IPv6", "http://u:p@[::1]:8123/db", http({ url: "http://[::1]:8123", username: "u", password: "p", database: "db" })],
  ["unknown parameters ignored", "clickhouse://h:9000?compress=lz4&read_timeout=5m", http({ url: "http://h:8123", mappedFrom: { port: 9000, to: 8123 } })],
];

for (const [name, dsn, want] of ok) {
  test(`dsn ok: ${name}`, () => {
    const got = parseClickHouseDsn(dsn, DATA);
    if ("error" in got) assert.unreachable(`unexpected error: ${got.error}`);
    else assert.equal(got.target, want);
  });
}

// [name, dsn, a fragment the message must contain, the password that must not appear]
const bad: Array<[string, string, string | RegExp, string | undefined]> = [
  // The field's examples verbatim, placeholders and all: a clear error, not a crash.
  ["field native example verbatim (port placeholder)", "clickhouse://user:password@host:port/database?dial_timeout=10s", /port/, undefined],
  ["field query example verbatim (placeholders)", "http://<host>:8443?username=default&password=<password>/<database>", /host "<host>"/, "<password>"],
  ["bad scheme", "mysql://u:S3cretPw!@h:3306/db", /unsupported scheme "mysql:\/\/"/, "S3cretPw!"],
  ["not a URL", "u:S3cretPw!@h:8123", /not a URL/, "S3cretPw!"],
  ["missing host", "http://u:S3cretPw!@:8123/db", /host is missing/, "S3cretPw!"],
  ["missing host, nothing at all", "clickhouse://", /host is missing/, undefined],
  ["port not a number", "http://u:S3cretPw!@h:80a/db", /port/, "S3cretPw!"],
  ["port out of range", "clickhouse://u:S3cretPw!@h:70000/db", /port/, "S3cretPw!"],
  ["port 0", "clickhouse://u:S3cretPw!@h:0/db", /port/, "S3cretPw!"],
  // An unencoded `/` in the password: the authority ends early; the password's start looks like a port.
  ["unencoded slash in password", "http://u:TopSecret/xyz@h:8123/db", /port/, "TopSecret"],
  ["bad dial_timeout", "clickhouse://u:S3cretPw!@h:9000/db?dial_timeout=ten", /dial_timeout="ten"/, "S3cretPw!"],
  ["negative dial_timeout", "clickhouse://u:S3cretPw!@h:9000/db?dial_timeout=-1s", /dial_timeout/, "S3cretPw!"],
  ["zero dial_timeout", "clickhouse://u:S3cretPw!@h:9000/db?dial_timeout=0", /dial_timeout/, "S3cretPw!"],
  ["bad secure", "http://h:8123?username=u&password=S3cretPw!&secure=yes/db", /secure="yes"/, "S3cretPw!"],
  ["bad skip_verify", "http://u:S3cretPw!@h:8123?skip_verify=maybe", /skip_verify="maybe"/, "S3cretPw!"],
  ["bad percent-encoding in password", "http://u:S3cret%zzPw@h:8123", /percent-encoding/, "S3cret%zzPw"],
  ["bad percent-encoding in query password", "http://h:8123?password=S3cret%zzPw/db", /percent-encoding/, "S3cret%zzPw"],
  ["two databases", "http://u:S3cretPw!@h:8123/one?password=x/two", /more than once/, "S3cretPw!"],
  ["path with two segments", "http://u:S3cretPw!@h:8123/a/b", /more than one segment/, "S3cretPw!"],
  ["bare IPv6 without brackets", "http://u:S3cretPw!@::1:8123/db", /./, "S3cretPw!"],
];

for (const [name, dsn, fragment, secret] of bad) {
  test(`dsn error: ${name}`, () => {
    const got = parseClickHouseDsn(dsn, DATA);
    if (!("error" in got)) return assert.unreachable(`expected an error, got ${JSON.stringify(got.target)}`);
    assert.ok(got.error.startsWith("DEKART_CLICKHOUSE_DATA_CONNECTION: "), got.error);
    assert.ok(got.error.includes("; "), `no fix given: ${got.error}`);
    if (typeof fragment === "string") assert.ok(got.error.includes(fragment), got.error);
    else assert.match(got.error, fragment);
    if (secret !== undefined) assert.not.ok(got.error.includes(secret), `password leaked: ${got.error}`);
  });
}

test("dsn error never contains the DSN itself", () => {
  for (const [, dsn] of bad) {
    const got = parseClickHouseDsn(dsn, DATA);
    // (`clickhouse://` alone is too short to be telling: it is part of the listed forms.)
    if ("error" in got && dsn.length > 16) assert.not.ok(got.error.includes(dsn), got.error);
  }
});

test.run();
