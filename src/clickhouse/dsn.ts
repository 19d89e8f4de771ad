// DEKART_CLICKHOUSE_DATA_CONNECTION: the ClickHouse DSN forms found in the field (README,
// "ClickHouse DSN forms").
//
//   unset / ""                      → embedded chDB under <dataDir>/clickhouse
//   chdb://<path>                   → embedded chDB under <path> (`chdb://` alone: the default)
//   clickhouse://user:pw@host:port/db?dial_timeout=10s&secure=true&skip_verify=true
//                                   → native form, mapped to HTTP (9000→8123, 9440→8443)
//   http(s)://user:pw@host:port/db?secure=false&skip_verify=true
//   http(s)://host:port?username=default&password=<pw>/<db>
//                                   → credentials as query parameters, the database after the
//                                     last `/` of the query string
//
// Parsing is done by hand rather than with WHATWG `URL`, because the field forms are not all
// valid URLs (a database after the query string, `clickhouse://` with odd ports) and because
// every error must name the problem without ever echoing the password. Error texts never include
// the DSN, the user info, the query string or a port/path that could be a misplaced password;
// they only echo the scheme, a host taken from after the last `@`, and the dial_timeout value.
//
// Decoding: user, password, database and query values are percent-decoded (`%2F` → `/`); `+` is
// kept literally (a password may contain `+`; it is not form-decoded to a space). `#` has no
// fragment meaning here and is kept literally too. Unknown query parameters (e.g. `compress`,
// `read_timeout`, ClickHouse settings) are ignored, so DSNs written for clickhouse-go keep working.

import * as path from "node:path";
import type { ClickHouseTarget } from "../config/types.js";
import { parseDuration } from "../durations.js";

export const DSN_VARIABLE = "DEKART_CLICKHOUSE_DATA_CONNECTION";

const FORMS =
  "use clickhouse://user:password@host:9000/database, http(s)://user:password@host:8123/database, " +
  "http(s)://host:8443?username=default&password=<password>/<database>, chdb://<path>, or leave it unset for the embedded engine";

export type DsnResult = { target: ClickHouseTarget } | { error: string };

const NATIVE_TO_HTTP: ReadonlyMap<number, number> = new Map([
  [9000, 8123],
  [9440, 8443],
]);

function fail(problem: string, fix: string): { error: string } {
  return { error: `${problem}; ${fix}` };
}

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** `true`/`1` and `false`/`0`, any case; undefined for anything else. */
export function parseBool(text: string): boolean | undefined {
  switch (text.trim().toLowerCase()) {
    case "true":
    case "1":
      return true;
    case "false":
    case "0":
      return false;
    default:
      return undefined;
  }
}

const KNOWN_PARAMS: ReadonlySet<string> = new Set(["username", "password", "database", "secure", "skip_verify", "dial_timeout"]);

const HOSTNAME = /^[A-Za-z0-9._-]+$/;
const IPV6 = /^\[[0-9A-Fa-f:.]+\]$/;

/**
 * Parses DEKART_CLICKHOUSE_DATA_CONNECTION. `dataDir` is CHJOB_DATA_DIR (the default chDB path is
 * `<dataDir>/clickhouse`). A relative `chdb://<path>` is returned as given (the caller resolves it).
 * Never throws; an error text starts with the variable name and never contains the password.
 */
export function parseClickHouseDsn(dsn: string | undefined, dataDir: string): DsnResult {
  const text = (dsn ?? "").trim();
  const defaultPath = path.join(dataDir, "clickhouse");
  if (text === "") return { target: { kind: "chdb", path: defaultPath } };
  const parsed = parseDsnText(text);
  if ("error" in parsed) return { error: `${DSN_VARIABLE}: ${parsed.error}` };
  const target = parsed.target;
  return { target: target.kind === "chdb" ? { kind: "chdb", path: target.path ?? defaultPath } : target };
}

/** What a DSN names before CHJOB_DATA_DIR is known: `chdb://` alone has no path of its own. */
export type DsnTarget = Exclude<ClickHouseTarget, { kind: "chdb" }> | { kind: "chdb"; path: string | undefined };

/**
 * Parses a set (non-empty, trimmed) DSN. The error is the problem and its fix, without the
 * variable's name (parseClickHouseDsn and the configuration table add it).
 */
export function parseDsnText(text: string): { target: DsnTarget } | { error: string } {
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(text);
  if (!schemeMatch) {
    return fail("is not a URL (no scheme://)", FORMS);
  }
  const scheme = schemeMatch[1]!.toLowerCase();
  const rest = schemeMatch[2]!;

  if (scheme === "chdb") {
    return { target: { kind: "chdb", path: rest === "" ? undefined : rest } };
  }
  if (scheme !== "clickhouse" && scheme !== "http" && scheme !== "https") {
    return fail(`unsupported scheme "${scheme}://"`, FORMS);
  }

  // Authority: up to the first `/` or `?`; user info: up to the last `@` in it (like Go's url.Parse).
  const authEnd = rest.search(/[/?]/);
  const authority = authEnd < 0 ? rest : rest.slice(0, authEnd);
  const afterAuthority = authEnd < 0 ? "" : rest.slice(authEnd);
  const at = authority.lastIndexOf("@");
  const userInfo = at < 0 ? undefined : authority.slice(0, at);
  const hostPort = authority.slice(at + 1);
  const encodeHint =
    "percent-encode a / ? or % inside the credentials (%2F, %3F, %25)";

  let username: string | undefined;
  let password: string | undefined;
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(":");
    const rawUser = colon < 0 ? userInfo : userInfo.slice(0, colon);
    const rawPassword = colon < 0 ? undefined : userInfo.slice(colon + 1);
    const user = decode(rawUser);
    if (user === undefined) return fail("the user name is not valid percent-encoding", encodeHint);
    if (user !== "") username = user;
    if (rawPassword !== undefined) {
      const pw = decode(rawPassword);
      if (pw === undefined) return fail("the password is not valid percent-encoding", encodeHint);
      password = pw;
    }
  }

  // Host and port.
  let host: string;
  let portText: string | undefined;
  if (hostPort.startsWith("[")) {
    const close = hostPort.indexOf("]");
    if (close < 0) return fail("the IPv6 host has no closing ]", "write it as [::1]:8123");
    host = hostPort.slice(0, close + 1);
    const after = hostPort.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) {
      return fail("unexpected text after the IPv6 host", "write it as [::1]:8123");
    }
    portText = after === "" ? undefined : after.slice(1);
  } else {
    const colon = hostPort.indexOf(":");
    host = colon < 0 ? hostPort : hostPort.slice(0, colon);
    portText = colon < 0 ? undefined : hostPort.slice(colon + 1);
  }
  if (host === "") {
    return fail("the host is missing", `${FORMS}${userInfo === undefined ? "" : `; ${encodeHint}`}`);
  }
  if (!(HOSTNAME.test(host) || IPV6.test(host))) {
    return fail(
      `the host "${host}" is not a valid host name or IP address`,
      "replace it with the ClickHouse server's name or address (IPv6 in brackets)",
    );
  }
  let explicitPort: number | undefined;
  if (portText !== undefined && portText !== "") {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      // The port text is not echoed: with a mistyped DSN it may be part of a password.
      return fail(
        "the port after the host is not a number from 1 to 65535",
        `write host:port with a numeric port, e.g. host:8123 (HTTP) or host:9000 (native); ${encodeHint}`,
      );
    }
    explicitPort = Number(portText);
  }

  // Path database and query string (with an optional trailing `/<database>`).
  const qIdx = afterAuthority.indexOf("?");
  const rawPath = qIdx < 0 ? afterAuthority : afterAuthority.slice(0, qIdx);
  let rawQuery = qIdx < 0 ? "" : afterAuthority.slice(qIdx + 1);

  const databases: string[] = [];
  const pathDb = rawPath.replace(/^\/+/, "").replace(/\/+$/, "");
  if (pathDb.includes("/")) {
    return fail("the path has more than one segment", `put only the database after the host, e.g. host:8123/database; ${encodeHint}`);
  }
  if (pathDb !== "") {
    const db = decode(pathDb);
    if (db === undefined) return fail("the database in the path is not valid percent-encoding", "encode % as %25");
    databases.push(db);
  }

  const slash = rawQuery.lastIndexOf("/");
  if (slash >= 0) {
    // `...&password=<password>/<database>`: the database follows the last `/`. Tolerate more
    // parameters after it (`/<database>&secure=true`).
    let tail = rawQuery.slice(slash + 1);
    rawQuery = rawQuery.slice(0, slash);
    const amp = tail.indexOf("&");
    if (amp >= 0) {
      rawQuery = `${rawQuery}&${tail.slice(amp + 1)}`;
      tail = tail.slice(0, amp);
    }
    if (tail.includes("=")) {
      return fail(
        "the text after the last / of the query string is not a database name",
        "put the database last (…&password=<password>/<database>) and encode a / inside a value as %2F",
      );
    }
    if (tail !== "") {
      const db = decode(tail);
      if (db === undefined) return fail("the database after the query string is not valid percent-encoding", "encode % as %25");
      databases.push(db);
    }
  }

  const params = new Map<string, string>();
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? "" : part.slice(eq + 1);
    const key = decode(rawKey);
    if (key === undefined) return fail("a query parameter name is not valid percent-encoding", "encode % as %25");
    const value = decode(rawValue);
    if (value === undefined) {
      return fail(
        // Only known parameter names are echoed: with an unencoded & in a password, an
        // unknown "name" may be a piece of the password.
        `the value of ${KNOWN_PARAMS.has(key) ? `the query parameter "${key}"` : "a query parameter"} is not valid percent-encoding`,
        "encode % as %25",
      );
    }
    params.set(key, value);
  }

  const qUser = params.get("username");
  if (qUser !== undefined && qUser !== "") username = qUser;
  const qPassword = params.get("password");
  if (qPassword !== undefined) password = qPassword;
  const qDatabase = params.get("database");
  if (qDatabase !== undefined && qDatabase !== "") databases.push(qDatabase);

  const distinctDbs = [...new Set(databases)];
  if (distinctDbs.length > 1) {
    return fail(
      "the database is given more than once with different names (path, database= or after the query string)",
      "give it once",
    );
  }

  let secure: boolean | undefined;
  const secureText = params.get("secure");
  if (secureText !== undefined) {
    secure = parseBool(secureText);
    if (secure === undefined) return fail(`secure=${JSON.stringify(secureText)} is not true or false`, "use secure=true or secure=false");
  }
  let skipVerify = false;
  const skipText = params.get("skip_verify");
  if (skipText !== undefined) {
    const v = parseBool(skipText);
    if (v === undefined) return fail(`skip_verify=${JSON.stringify(skipText)} is not true or false`, "use skip_verify=true or skip_verify=false");
    skipVerify = v;
  }
  let connectTimeoutMs: number | undefined;
  const dialText = params.get("dial_timeout");
  if (dialText !== undefined) {
    const ms = parseDuration(dialText);
    if (ms === undefined || ms <= 0) {
      return fail(`dial_timeout=${JSON.stringify(dialText)} is not a positive duration`, "use e.g. dial_timeout=10s or dial_timeout=500ms");
    }
    connectTimeoutMs = Math.max(1, Math.ceil(ms));
  }

  // Scheme and port.
  let https: boolean;
  let port: number;
  let mappedFrom: { port: number; to: number } | undefined;
  if (scheme === "clickhouse") {
    // The native TLS port 9440 implies TLS unless secure=false says otherwise.
    https = secure ?? explicitPort === 9440;
    if (explicitPort === undefined) {
      port = https ? 8443 : 8123;
    } else {
      const to = NATIVE_TO_HTTP.get(explicitPort);
      if (to !== undefined) {
        mappedFrom = { port: explicitPort, to };
        port = to;
      } else {
        port = explicitPort;
      }
    }
  } else {
    // An explicit https:// stays https even with secure=false; secure=true upgrades http://.
    https = scheme === "https" || secure === true;
    port = explicitPort ?? (https ? 8443 : 8123);
  }

  return {
    target: {
      kind: "http",
      url: `${https ? "https" : "http"}://${host}:${port}`,
      username: username ?? "default",
      password: password ?? "",
      database: distinctDbs[0] ?? "default",
      connectTimeoutMs,
      skipVerify,
      mappedFrom,
    },
  };
}
