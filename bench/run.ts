// `npm run bench [-- <workload>... [--rounds=N] [--log=LEVEL] [--env=NAME=VALUE]...]`
// Runs each workload against its floor (the same engine doing the same work with
// no service), alternating the two, and prints a table of medians and ratios;
// the figures go to bench/results/latest.json.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fanout } from "./workloads/fanout.js";
import { large } from "./workloads/large.js";
import { listing } from "./workloads/listing.js";
import { memory } from "./workloads/memory.js";
import { recovery } from "./workloads/recovery.js";
import { replicas } from "./workloads/replicas.js";
import { small } from "./workloads/small.js";
import { store } from "./workloads/store.js";
import { throughput } from "./workloads/throughput.js";
import { watchers } from "./workloads/watchers.js";
import { fmt, type BenchContext, type Row, type Workload, type WorkloadResult } from "./workload.js";

const WORKLOADS: Workload[] = [large, small, fanout, throughput, memory, store, replicas, watchers, recovery, listing];
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");

function usage(problem?: string): never {
  if (problem) console.error(problem);
  console.error(
    `usage: npm run bench -- [${WORKLOADS.map((w) => w.name).join("|")}]... [--rounds=N] [--log=warn|info|debug] [--env=NAME=VALUE]... [--quiet=LOAD] [--probe] [--profile=DIR] [--out=FILE]\n` +
      "  no workload: all of them; --log: the service's CHJOB_LOG_LEVEL (default warn); --env: extra service environment;\n" +
      "  --quiet: before each workload, wait (up to 10 min) until the 1-minute load average is below LOAD;\n" +
      "  --probe: measure the service's event-loop delay; --profile: CPU profiles (--cpu-prof) of every service and floor process into DIR;\n" +
      "  store, replicas, watchers: their PostgreSQL server is BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)",
  );
  process.exit(2);
}

function parseArgs(argv: string[]) {
  const names: string[] = [];
  let rounds: number | undefined;
  let logLevel = "warn";
  let out = join(ROOT, "bench/results/latest.json");
  let quiet: number | undefined;
  let probe = false;
  let profileDir: string | undefined;
  const serviceEnv: Record<string, string> = {};
  for (const arg of argv) {
    const [flag, value] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    if (flag === "--rounds") {
      rounds = Number(value);
      if (!Number.isInteger(rounds) || rounds < 1) usage(`--rounds: a positive integer, not ${value}`);
    } else if (flag === "--log") {
      if (!value || !["debug", "info", "warn", "error"].includes(value)) usage(`--log: debug, info, warn or error, not ${value}`);
      logLevel = value;
    } else if (flag === "--env") {
      const at = value?.indexOf("=") ?? -1;
      if (!value || at < 1) usage(`--env: NAME=VALUE, not ${value}`);
      serviceEnv[value.slice(0, at)] = value.slice(at + 1);
    } else if (flag === "--quiet") {
      quiet = Number(value);
      if (!(quiet > 0)) usage(`--quiet: a load average, not ${value}`);
    } else if (flag === "--probe") {
      probe = true;
    } else if (flag === "--profile") {
      if (!value) usage("--profile: a directory");
      profileDir = resolve(value);
    } else if (flag === "--out") {
      if (!value) usage("--out: a file name");
      out = value;
    } else if (flag === "--help" || flag === "-h") {
      usage();
    } else if (flag.startsWith("-")) {
      usage(`unknown option ${flag}`);
    } else {
      if (!WORKLOADS.some((w) => w.name === flag)) usage(`unknown workload ${flag}`);
      names.push(flag);
    }
  }
  const chosen = names.length ? WORKLOADS.filter((w) => names.includes(w.name)) : WORKLOADS;
  return { chosen, rounds, logLevel, out, serviceEnv, quiet, probe, profileDir };
}

function version(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "?";
  }
}

const cell = (v: number | string, digits = 1) => (typeof v === "number" ? fmt(v, digits) : v);

function table(results: WorkloadResult[]): string {
  const head = ["workload", "metric", "service", "floor", "service vs floor", "bar", "met"];
  const lines: string[][] = [];
  for (const r of results) {
    for (const row of r.rows) {
      const unit = (v: number | string) => (typeof v === "number" && row.unit ? `${cell(v)} ${row.unit}` : cell(v));
      lines.push([r.name, row.metric, unit(row.service), unit(row.floor), row.compare, row.bar, row.met === undefined ? "" : row.met ? "yes" : "NO"]);
    }
  }
  const md = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [md(head), md(head.map(() => "---")), ...lines.map(md)].join("\n");
}

/** Other work on the machine moves every figure: wait for it to calm down. */
async function waitForQuiet(limit: number): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  let said = false;
  while (loadavg()[0]! >= limit && Date.now() < deadline) {
    if (!said) console.log(`  waiting for the load average (${loadavg()[0]!.toFixed(2)}) to fall below ${limit}...`);
    said = true;
    await new Promise((r) => setTimeout(r, 5_000));
  }
}

async function main() {
  const { chosen, rounds, logLevel, out, serviceEnv, quiet, probe, profileDir } = parseArgs(process.argv.slice(2));
  const profileArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "?",
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    chdb: version("chdb"),
    s3rver: version("@20minutes/s3rver"),
    grpcJs: version("@grpc/grpc-js"),
    awsSdkS3: version("@aws-sdk/client-s3"),
  };
  console.log(`chjob bench: ${chosen.map((w) => w.name).join(", ")}; service log level ${logLevel}${Object.keys(serviceEnv).length ? `; env ${JSON.stringify(serviceEnv)}` : ""}`);
  console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}, chdb ${machine.chdb}, s3rver ${machine.s3rver}\n`);
  const results: Array<WorkloadResult & { loadAverage: { before: number; after: number } }> = [];
  const started = new Date();
  for (const w of chosen) {
    const ctx: BenchContext = {
      rounds: rounds ?? w.defaultRounds,
      service: { logLevel, env: serviceEnv, probe, nodeArgs: profileArgs },
      floorNodeArgs: profileArgs,
      say: (line) => console.log(line),
    };
    if (quiet !== undefined) await waitForQuiet(quiet);
    const before = loadavg()[0]!;
    console.log(`${w.name}: ${w.title} (${ctx.rounds} rounds; load average ${before.toFixed(2)})`);
    const t0 = Date.now();
    const result = await w.run(ctx);
    const after = loadavg()[0]!;
    console.log(`  ${((Date.now() - t0) / 1000).toFixed(0)} s; load average ${after.toFixed(2)}\n`);
    results.push({ ...result, loadAverage: { before, after } });
  }
  console.log(table(results));
  const missed = results.flatMap((r) => r.rows.filter((row) => row.met === false).map((row) => `${r.name}: ${row.metric}`));
  console.log(missed.length ? `\nbars missed: ${missed.join("; ")}` : "\nevery bar met");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ started: started.toISOString(), machine, logLevel, serviceEnv, probe, results }, null, 2) + "\n");
  console.log(`figures: ${out}`);
  // Service and floor children are gone; grpc-js channels may hold the loop open.
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

export type { Row };
