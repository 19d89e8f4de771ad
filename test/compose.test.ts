// Static checks of docker-compose.yml, the Dockerfile and .dockerignore (no Docker engine needed).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { CONFIG_VARIABLES, EXTRA_VARIABLES } from "../src/config/index.js";

// dist/test/compose.test.js -> repo root
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (name: string) => readFileSync(join(ROOT, name), "utf8");

interface Service {
  image?: string;
  build?: unknown;
  ports?: string[];
  profiles?: string[];
  environment?: Record<string, unknown> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: unknown };
  command?: unknown;
  entrypoint?: unknown;
  deploy?: { replicas?: number };
  scale?: number;
  container_name?: string;
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  stop_grace_period?: string;
}

const composeText = read("docker-compose.yml");
const compose = parse(composeText) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

/** A service's environment as a map, whichever form (map or `KEY=VALUE` list) it is written in. */
function env(service: Service): Map<string, string> {
  const out = new Map<string, string>();
  const e = service.environment ?? {};
  if (Array.isArray(e)) {
    for (const item of e) {
      const i = item.indexOf("=");
      out.set(i < 0 ? item : item.slice(0, i), i < 0 ? "" : item.slice(i + 1));
    }
  } else {
    for (const [k, v] of Object.entries(e)) out.set(k, v === null || v === undefined ? "" : String(v));
  }
  return out;
}

/** The value compose would use with nothing set in the shell: `${X:-d}` / `${X-d}` become `d`. */
function withDefaults(v: string): string {
  return v.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}/g, (_m, d: string | undefined) => d ?? "");
}

function dependsOn(service: Service): Record<string, string | undefined> {
  const d = service.depends_on ?? [];
  if (Array.isArray(d)) return Object.fromEntries(d.map((name) => [name, undefined]));
  return Object.fromEntries(Object.entries(d).map(([name, v]) => [name, v?.condition]));
}

const chjob = services["chjob"]!;
const chjobEnv = env(chjob);
const value = (name: string) => withDefaults(chjobEnv.get(name) ?? "");

test("CONFIG_VARIABLES: one entry each, apart from the tuning ones", () => {
  assert.ok(CONFIG_VARIABLES.length > 0);
  assert.is(new Set(CONFIG_VARIABLES).size, CONFIG_VARIABLES.length, "no duplicates");
  for (const v of CONFIG_VARIABLES) assert.match(v, /^(DEKART|AWS|CHJOB)_[A-Z0-9_]+$/);
  for (const v of EXTRA_VARIABLES) assert.not.ok(CONFIG_VARIABLES.includes(v), `${v} is in both lists`);
});

test("compose: the services exist", () => {
  for (const name of ["clickhouse", "localstack", "create-buckets", "postgres", "db", "adminer", "chjob"]) {
    assert.ok(services[name], `service ${name}`);
  }
  assert.match(services["clickhouse"]!.image!, /^clickhouse\/clickhouse-server(:|$)/);
  assert.match(services["localstack"]!.image!, /^localstack\/localstack(:|$)/);
  assert.match(services["create-buckets"]!.image!, /^amazon\/aws-cli(:|$)/);
  assert.ok(chjob.build, "chjob is built from the Dockerfile");
  for (const name of ["db", "adminer"]) assert.ok(services[name]!.profiles?.includes("local"), `${name} in profile local`);
  for (const name of ["clickhouse", "localstack", "create-buckets", "postgres", "chjob"]) {
    assert.not.ok(services[name]!.profiles, `${name} starts by default`);
  }
});

test("compose: clickhouse and localstack as in the original setup", () => {
  const ch = services["clickhouse"]!;
  assert.ok(ch.ports?.includes("8123:8123") && ch.ports.includes("9000:9000"));
  const chEnv = env(ch);
  for (const k of ["CLICKHOUSE_DB", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"]) assert.is(chEnv.get(k), "dekart", k);
  const ls = services["localstack"]!;
  assert.ok(ls.ports?.includes("127.0.0.1:4566:4566"));
  assert.ok(ls.healthcheck?.test, "localstack has a healthcheck");
  assert.is(dependsOn(services["create-buckets"]!)["localstack"], "service_healthy");
  const cmd = JSON.stringify([services["create-buckets"]!.entrypoint, services["create-buckets"]!.command]);
  assert.ok(cmd.includes("http://localstack:4566"), "aws cli talks to localstack");
  assert.ok(cmd.includes(value("DEKART_CLOUD_STORAGE_BUCKET")), "creates the storage bucket");
});

/** The volume mounts of a service as [source, target] pairs, whichever syntax they are written in. */
function mounts(service: Service): Array<[string, string]> {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== "string") return [v.source ?? "", v.target ?? ""];
    const parts = v.split(":");
    return parts.length === 1 ? ["", parts[0]!] : [parts[0]!, parts[1]!];
  });
}

const replicas = chjob.deploy?.replicas ?? chjob.scale ?? 1;

test("compose: chjob depends on clickhouse, the buckets and a healthy postgres", () => {
  const deps = dependsOn(chjob);
  assert.ok("clickhouse" in deps);
  assert.is(deps["create-buckets"], "service_completed_successfully");
  assert.is(deps["postgres"], "service_healthy");
});

test("compose: postgres is the official image, keeps its data, has a pg_isready healthcheck", () => {
  const pg = services["postgres"]!;
  assert.match(pg.image!, /^postgres(:|$)/);
  const data = mounts(pg).find(([, target]) => target.startsWith("/var/lib/postgresql"));
  assert.ok(data, "a volume on the data directory");
  const [source] = data!;
  assert.ok(source.startsWith("./docker/volume/") || Object.keys(compose.volumes ?? {}).includes(source), `${source}: a named volume or ./docker/volume path`);
  assert.match(JSON.stringify(pg.healthcheck?.test ?? ""), /pg_isready/);
  const pgEnv = env(pg);
  for (const k of ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"]) assert.ok(pgEnv.get(k), `${k} is set`);
});

test("compose: CHJOB_DATABASE_URL names the postgres service with its user, password and database", () => {
  const url = new URL(value("CHJOB_DATABASE_URL"));
  assert.ok(["postgres:", "postgresql:"].includes(url.protocol), url.protocol);
  assert.is(url.hostname, "postgres");
  assert.ok(url.port === "" || url.port === "5432", `port ${url.port}`);
  const pgEnv = env(services["postgres"]!);
  assert.is(decodeURIComponent(url.username), pgEnv.get("POSTGRES_USER"));
  assert.is(decodeURIComponent(url.password), pgEnv.get("POSTGRES_PASSWORD"));
  assert.is(url.pathname, "/" + pgEnv.get("POSTGRES_DB"));
  assert.not.ok(chjobEnv.has("DEKART_POSTGRES_HOST"), "one way to name the store");
});

test("compose: chjob runs as several replicas, each with its own name, port and data", () => {
  assert.ok(replicas >= 2, `replicas: ${replicas}`);
  assert.match(composeText, /--scale chjob=\d/, "the file says how to scale");
  assert.not.ok(chjob.container_name, "a container_name allows one container only");
  // A fixed id would give every replica the same name; the default (host name, pid) differs per container.
  assert.not.ok(chjobEnv.has("CHJOB_REPLICA_ID"), "CHJOB_REPLICA_ID is left to its default");
  // Each replica publishes 50051 on a host port of its own: a range at least as wide as the replicas.
  const published = (chjob.ports ?? []).map(String).map((p) => /^(?:[\d.]+:)?(\d+)(?:-(\d+))?:50051$/.exec(p)).find(Boolean);
  assert.ok(published, `a port mapping to 50051: ${JSON.stringify(chjob.ports)}`);
  const [, first, last] = published!;
  assert.is(first, "50051");
  assert.ok(Number(last ?? first) - Number(first) + 1 >= replicas, `host ports ${first}-${last ?? first} for ${replicas} replicas`);
  // No volume shared by the replicas on the data directory (chDB and PGlite lock it).
  const dataDir = value("CHJOB_DATA_DIR") || "/data";
  for (const [source, target] of mounts(chjob)) {
    assert.ok(target !== dataDir || source === "", `${source} is mounted on ${target} in every replica`);
  }
});

test("compose: chjob's stop_grace_period is longer than CHJOB_SHUTDOWN_GRACE", () => {
  const seconds = (d: string) => {
    const m = /^(\d+)(s|m)$/.exec(d.trim());
    assert.ok(m, `duration ${d}`);
    return Number(m![1]) * (m![2] === "m" ? 60 : 1);
  };
  assert.ok(chjob.stop_grace_period, "stop_grace_period is set");
  assert.ok(seconds(chjob.stop_grace_period!) > seconds(value("CHJOB_SHUTDOWN_GRACE") || "30s"));
});

test("compose: every chjob variable is a configuration variable", () => {
  const known = new Set<string>([...CONFIG_VARIABLES, ...EXTRA_VARIABLES]);
  for (const k of chjobEnv.keys()) assert.ok(known.has(k), `${k} is not in CONFIG_VARIABLES`);
});

test("compose: the required variables are set", () => {
  for (const k of [
    "DEKART_CLICKHOUSE_DATA_CONNECTION",
    "DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION",
    "AWS_ENDPOINT",
    "DEKART_CLICKHOUSE_S3_ENDPOINT",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "DEKART_CLOUD_STORAGE_BUCKET",
    "CHJOB_GRPC_ADDRESS",
  ]) {
    assert.ok(value(k).length > 0, `${k} is set`);
  }
  assert.is(value("DEKART_DATASOURCE"), "CH");
  assert.is(value("DEKART_STORAGE"), "S3");
  assert.match(value("CHJOB_GRPC_ADDRESS"), /^0\.0\.0\.0:50051$/, "listens on all interfaces in the container");
  assert.is(value("DEKART_CLOUD_STORAGE_BUCKET"), "dekart-dev-local");
  assert.is(value("DEKART_CLICKHOUSE_S3_OUTPUT_LOCATION").replace(/^s3:\/\//, "").split("/")[0], "dekart-dev-local");
  assert.is(value("AWS_INSECURE"), "true", "LocalStack is plain http");
  assert.match(value("CHJOB_LOG_LEVEL"), /^(debug|info|warn|error)$/);
});

test("compose: the DSN names the clickhouse service, the S3 endpoints the localstack service", () => {
  const dsn = new URL(value("DEKART_CLICKHOUSE_DATA_CONNECTION"));
  assert.ok(["http:", "https:", "clickhouse:"].includes(dsn.protocol), dsn.protocol);
  assert.is(dsn.hostname, "clickhouse");
  assert.ok(["8123", "9000"].includes(dsn.port), `port ${dsn.port}`);
  assert.is(decodeURIComponent(dsn.username), env(services["clickhouse"]!).get("CLICKHOUSE_USER"));
  assert.is(decodeURIComponent(dsn.password), env(services["clickhouse"]!).get("CLICKHOUSE_PASSWORD"));
  assert.is(dsn.pathname, "/" + env(services["clickhouse"]!).get("CLICKHOUSE_DB"));
  for (const k of ["AWS_ENDPOINT", "DEKART_CLICKHOUSE_S3_ENDPOINT"]) {
    const u = new URL(value(k));
    assert.is(u.hostname, "localstack", k);
    assert.is(u.port, "4566", k);
  }
});

test("Dockerfile: node:24-slim, multi-stage, serves on 0.0.0.0:50051 through the launcher", () => {
  const df = read("Dockerfile");
  const froms = df.match(/^FROM\s+\S+/gm) ?? [];
  assert.ok(froms.length >= 2, "multi-stage");
  assert.ok(froms.every((f) => /node:24-slim/.test(f)), froms.join(", "));
  assert.match(df, /^RUN npm ci\b/m);
  assert.match(df, /^RUN npm run build\b/m);
  assert.match(df, /^EXPOSE 50051\b/m);
  assert.match(df, /CHJOB_GRPC_ADDRESS=0\.0\.0\.0:50051/);
  const cmds = df.match(/^CMD\s+(.+)$/gm) ?? [];
  assert.ok(cmds.length > 0, "has a CMD");
  const last = cmds[cmds.length - 1]!.replace(/^CMD\s+/, "");
  const argv = last.trim().startsWith("[") ? (JSON.parse(last) as string[]) : last.trim().split(/\s+/);
  // The launcher, not main.js: it sizes libuv's thread pool for chDB first (test/container.test.ts).
  assert.equal(argv, ["node", "dist/src/cli/launch.cjs", "serve"]);
});

test(".dockerignore keeps local state out of the build context", () => {
  const lines = read(".dockerignore").split("\n").map((l) => l.trim());
  for (const p of ["node_modules", "dist", ".chjob", ".git"]) assert.ok(lines.includes(p), p);
});

test.run();
