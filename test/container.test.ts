// The container, checked without a Docker engine (none runs here): every command that the
// Dockerfile (CMD, ENTRYPOINT, HEALTHCHECK, RUN) and docker-compose.yml run names something the
// build makes (dist/ after `npm run build`, the launcher, package.json's bin, its scripts), the
// image starts through the launcher (which sizes libuv's pool for chDB), and it runs as a user
// other than root who owns the data directory. What is run is run here, with this machine's node.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parse } from "yaml";

// dist/test/container.test.js -> repo root
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (name: string) => readFileSync(join(ROOT, name), "utf8");
const pkg = JSON.parse(read("package.json")) as { bin: Record<string, string>; scripts: Record<string, string> };

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}
interface Stage {
  name: string | undefined;
  image: string;
  instructions: Instruction[];
}

/** The Dockerfile's stages and instructions: continuation lines joined, comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*(#|$)/.test(lines[i]!)) continue;
    const line = i + 1;
    let full = lines[i]!.trimEnd();
    // Docker drops comment lines inside a continued instruction.
    while (full.endsWith("\\") && i + 1 < lines.length) {
      full = full.slice(0, -1);
      i++;
      if (/^\s*#/.test(lines[i]!)) continue;
      full += ` ${lines[i]!.trim()}`;
      full = full.trimEnd();
    }
    const m = /^\s*(\w+)\s+(.*)$/s.exec(full);
    assert.ok(m, `Dockerfile line ${line}: ${full}`);
    const [, keyword, args] = m!;
    const ins = { keyword: keyword!.toUpperCase(), args: args!.trim(), line };
    if (ins.keyword === "FROM") {
      const [image, as, name] = ins.args.split(/\s+/);
      stages.push({ image: image!, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
    } else {
      assert.ok(stages.length > 0, `Dockerfile line ${line}: ${ins.keyword} before FROM`);
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return stages;
}

/** The argv of an exec-form (JSON) or shell-form command. */
function argv(form: string): string[] {
  const text = form.trim();
  if (text.startsWith("[")) return JSON.parse(text) as string[];
  return ["/bin/sh", "-c", text];
}

const stages = parseDockerfile(read("Dockerfile"));
const runtime = stages.at(-1)!;
const build = stages.find((s) => s.name === "build");
const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const last = (stage: Stage, keyword: string) => of(stage, keyword).at(-1);

/** ARG defaults of a stage, substituted into `${NAME}` / `$NAME`. */
function expand(stage: Stage, text: string): string {
  const args = new Map<string, string>();
  for (const a of of(stage, "ARG")) {
    const m = /^(\w+)(?:=(.*))?$/.exec(a.args);
    if (m) args.set(m[1]!, (m[2] ?? "").replace(/^"(.*)"$/, "$1"));
  }
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a: string | undefined, b: string | undefined) => args.get((a ?? b)!) ?? whole);
}

const workdir = (stage: Stage) => last(stage, "WORKDIR")?.args ?? "/";

/**
 * Where a path of the runtime image comes from in this repository after `npm run build`, by the
 * runtime stage's COPY instructions (from the build context, or from the build stage, whose
 * `COPY . .` and build make its WORKDIR a copy of the built repository); the symlinks its RUN
 * instructions make (`ln -s target link`) are followed. Undefined: the image has no such file.
 */
function inRepo(path: string, seen = 0): string | undefined {
  assert.ok(seen < 10, `symlink loop at ${path}`);
  const abs = posix.resolve(workdir(runtime), path);
  for (const link of symlinks()) if (link.link === abs) return inRepo(link.target, seen + 1);
  for (const copy of of(runtime, "COPY")) {
    const words = copy.args.split(/\s+/);
    const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
    const paths = words.filter((w) => !w.startsWith("--"));
    const rawDest = paths.pop()!;
    const dest = posix.resolve(workdir(runtime), rawDest);
    for (const src of paths) {
      // `COPY a b ./` puts each at dest/<name>; `COPY dir ./x` puts dir's contents at x.
      const target = paths.length > 1 || rawDest.endsWith("/") ? posix.join(dest, posix.basename(src)) : dest;
      if (abs !== target && !abs.startsWith(`${target}/`)) continue;
      const rest = abs.slice(target.length);
      if (from === undefined) return join(ROOT, src, rest);
      const stage = stages.find((s) => s.name === from);
      assert.ok(stage, `COPY --from=${from}: no such stage`);
      const srcAbs = posix.resolve(workdir(stage!), src);
      const base = workdir(stage!);
      assert.ok(of(stage!, "COPY").some((c) => /^\.\s+\.\/?$/.test(c.args)), `stage ${from} copies the build context to its WORKDIR`);
      if (srcAbs === base || srcAbs.startsWith(`${base}/`)) return join(ROOT, srcAbs.slice(base.length), rest);
    }
  }
  return undefined;
}

function symlinks(): Array<{ target: string; link: string }> {
  const out: Array<{ target: string; link: string }> = [];
  for (const run of of(runtime, "RUN")) {
    for (const m of run.args.matchAll(/\bln\s+-s[f]*\s+(\S+)\s+(\S+)/g)) out.push({ target: m[1]!, link: m[2]! });
  }
  return out;
}

/** The repository file a command's program is in the image: `node <script>` gives the script. */
function program(cmd: string[]): { file: string; args: string[] } {
  const [exe, ...rest] = cmd;
  assert.ok(exe, "an empty command");
  if (exe === "node") {
    // The base image's node; what it runs must be in the image.
    const script = rest[0]!;
    const file = inRepo(script);
    assert.ok(file, `node ${script}: not in the image`);
    return { file: file!, args: rest.slice(1) };
  }
  const path = exe.includes("/") ? exe : ["/usr/local/bin", "/usr/bin", "/bin"].map((d) => `${d}/${exe}`).find((p) => inRepo(p) !== undefined);
  assert.ok(path, `${exe}: not on the image's PATH (no ln -s to it)`);
  return { file: inRepo(path!)!, args: rest };
}

const LAUNCHER = join(ROOT, pkg.bin.chjob!);

/** Runs the built `chjob` with these arguments (as `node <launcher>`), cwd a temporary directory. */
function chjob(args: string[], env: Record<string, string> = {}) {
  const cwd = mkdtempSync(join(tmpdir(), "chjob-container-"));
  try {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(CHJOB_|DEKART_|AWS_)/.test(k)));
    return spawnSync(process.execPath, [LAUNCHER, ...args], { cwd, env: { ...clean, ...env }, encoding: "utf8", timeout: 30_000 });
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
}

/** The `chjob` subcommands the built command knows (from its help). */
const known = (() => {
  const r = chjob(["--help"]);
  assert.is(r.status, 0, r.stderr);
  const commands = /Commands:\n([\s\S]*)$/.exec(r.stdout)?.[1] ?? "";
  return new Set([...commands.matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!));
})();

test("package.json's bin is the launcher, built, executable, compiled from src/cli/launch.cts", () => {
  assert.is(pkg.bin.chjob, "dist/src/cli/launch.cjs");
  assert.ok(existsSync(join(ROOT, "src/cli/launch.cts")));
  assert.ok(existsSync(LAUNCHER), `${LAUNCHER}: run npm run build`);
  assert.ok((statSync(LAUNCHER).mode & 0o111) !== 0, "executable (postbuild)");
  assert.match(readFileSync(LAUNCHER, "utf8"), /^#!\/usr\/bin\/env node\n/);
  assert.match(readFileSync(LAUNCHER, "utf8"), /UV_THREADPOOL_SIZE/);
  for (const name of ["serve", "health", "run", "list"]) assert.ok(known.has(name), `chjob ${name}: ${[...known].join(", ")}`);
});

test("Dockerfile: node:24-slim, a build stage, a runtime stage with production dependencies only", () => {
  assert.ok(stages.length >= 2, "multi-stage");
  for (const s of stages) assert.is(s.image, "node:24-slim", `FROM ${s.image}`);
  assert.ok(build, "a stage named build");
  assert.is.not(runtime, build);
  assert.ok(of(build!, "RUN").some((r) => /^npm ci\b/.test(r.args)), "the build stage installs everything");
  const installs = of(runtime, "RUN").filter((r) => /\bnpm ci\b/.test(r.args));
  assert.is(installs.length, 1, "the runtime stage installs its own dependencies");
  const flags = expand(runtime, installs[0]!.args);
  assert.match(flags, /--omit=dev\b/);
  // chDB, PGlite and the embedded S3 server are optional dependencies: embedded mode needs them.
  assert.not.match(flags, /--omit=optional\b/);
  for (const copy of of(runtime, "COPY")) assert.not.match(copy.args, /node_modules/, `line ${copy.line}: no dev dependencies copied in`);
  // Whatever the runtime stage takes from the build context is there, and .dockerignore lets it in.
  const ignored = read(".dockerignore").split("\n").map((l) => l.trim());
  for (const copy of of(runtime, "COPY").filter((c) => !c.args.includes("--from="))) {
    const paths = copy.args.split(/\s+/).filter((w) => !w.startsWith("--"));
    for (const src of paths.slice(0, -1)) {
      assert.ok(existsSync(join(ROOT, src)), `COPY ${src}`);
      assert.not.ok(ignored.includes(src), `${src} is in .dockerignore`);
    }
  }
});

test("Dockerfile: every npm script and every /app path that a RUN names exists", () => {
  for (const stage of stages) {
    for (const run of of(stage, "RUN")) {
      for (const m of run.args.matchAll(/\bnpm run (\S+)/g)) assert.ok(pkg.scripts[m[1]!], `line ${run.line}: npm run ${m[1]}`);
      if (stage !== runtime) continue;
      for (const m of run.args.matchAll(/(?<=\s)(\/app\/\S+)/g)) assert.ok(inRepo(m[1]!) && existsSync(inRepo(m[1]!)!), `line ${run.line}: ${m[1]} is not in the image`);
    }
  }
  const chjobLink = symlinks().find((l) => l.link === "/usr/local/bin/chjob");
  assert.ok(chjobLink, "chjob is on the PATH");
  assert.is(chjobLink!.target, posix.join(workdir(runtime), pkg.bin.chjob!), "chjob on the PATH is package.json's bin");
});

test("Dockerfile: CMD serves through the launcher; it runs here and reads the configuration", () => {
  assert.is(of(runtime, "ENTRYPOINT").length, 0, "no ENTRYPOINT: CMD is the whole command");
  const cmd = argv(last(runtime, "CMD")!.args);
  assert.equal(cmd, ["node", pkg.bin.chjob, "serve"]);
  const { file, args } = program(cmd);
  assert.is(file, LAUNCHER);
  // The command runs: a bad configuration stops it before anything starts, exit 2.
  const r = chjob(args, { DEKART_DATASOURCE: "PG" });
  assert.is(r.status, 2, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /DEKART_DATASOURCE/);
});

test("Dockerfile: HEALTHCHECK is `chjob health` through the launcher; it runs here (exit 1 with nothing listening)", () => {
  const hc = last(runtime, "HEALTHCHECK");
  assert.ok(hc, "a HEALTHCHECK");
  const m = /^((?:--[\w-]+=\S+\s+)*)CMD\s+(.*)$/s.exec(hc!.args);
  assert.ok(m, `HEALTHCHECK ${hc!.args}`);
  const seconds = (name: string) => Number(new RegExp(`--${name}=(\\d+)s\\b`).exec(m![1]!)?.[1] ?? NaN);
  const cmd = argv(m![2]!);
  const { file, args } = program(cmd);
  assert.is(file, LAUNCHER);
  assert.is(args[0], "health");
  // Within Docker's timeout: the command's own deadline leaves time for node to start.
  const timeout = /^(\d+)s$/.exec(args[args.indexOf("--timeout") + 1] ?? "")?.[1];
  assert.ok(timeout !== undefined && Number(timeout) + 1 < seconds("timeout"), `chjob health --timeout ${timeout}s within --timeout=${seconds("timeout")}s`);
  // The image's own CHJOB_GRPC_ADDRESS (0.0.0.0, dialled as 127.0.0.1) with a port where nothing listens.
  const r = chjob(args, { CHJOB_GRPC_ADDRESS: "0.0.0.0:1" });
  assert.is(r.status, 1, `${r.stdout}${r.stderr}`);
  assert.match(r.stderr, /^chjob: cannot get the health of the chjob service at 127\.0\.0\.1:1 \(/);
});

test("Dockerfile: `chjob` as the image links it (a symlink to the launcher on the PATH) runs", () => {
  const dir = mkdtempSync(join(tmpdir(), "chjob-bin-"));
  try {
    symlinkSync(LAUNCHER, join(dir, "chjob"));
    const r = spawnSync("chjob", ["health", "--help"], {
      cwd: dir,
      env: { ...process.env, PATH: `${dir}:${dirname(process.execPath)}:${process.env.PATH}` },
      encoding: "utf8",
    });
    assert.is(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /^Usage: chjob health/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Dockerfile: the runtime stage runs as a user other than root, who owns the data directory", () => {
  const user = last(runtime, "USER")?.args;
  assert.ok(user, "a USER in the runtime stage");
  const name = user!.split(":")[0]!;
  assert.not.ok(["root", "0"].includes(name), `USER ${user}`);
  // USER comes before CMD and HEALTHCHECK, so both run as that user.
  const at = runtime.instructions.findIndex((i) => i.keyword === "USER");
  for (const k of ["CMD", "HEALTHCHECK"]) assert.ok(runtime.instructions.findIndex((i) => i.keyword === k) > at, `${k} after USER`);
  const dataDir = /CHJOB_DATA_DIR=(\S+)/.exec(of(runtime, "ENV").map((e) => e.args).join(" "))?.[1];
  assert.ok(dataDir && isAbsolute(dataDir), "CHJOB_DATA_DIR is set");
  assert.ok(
    of(runtime, "RUN").some((r) => new RegExp(`chown\\s+(-R\\s+)?${name}(:\\S+)?\\s+${dataDir}\\b`).test(r.args)),
    `${dataDir} belongs to ${name}`,
  );
});

test("docker-compose.yml: what it runs in the chjob image is a chjob command; no healthcheck of its own overrides the image's", () => {
  const compose = parse(read("docker-compose.yml")) as {
    services: Record<string, { build?: unknown; image?: string; command?: unknown; entrypoint?: unknown; healthcheck?: { test?: unknown; disable?: boolean } }>;
  };
  const built = Object.entries(compose.services).filter(([, s]) => s.build);
  assert.ok(built.length > 0, "a service built from the Dockerfile");
  for (const [name, s] of built) {
    assert.is(s.entrypoint, undefined, `${name}: no entrypoint`);
    if (s.command !== undefined) {
      const cmd = Array.isArray(s.command) ? (s.command as string[]) : String(s.command).split(/\s+/);
      // A command replaces CMD: `serve` (or another chjob command), run by the launcher.
      const sub = cmd[0] === "chjob" ? cmd[1] : cmd[0] === "node" ? (program(cmd).file === LAUNCHER ? cmd[2] : undefined) : cmd[0];
      assert.ok(sub && known.has(sub), `${name}: command ${JSON.stringify(s.command)}`);
    }
    if (s.healthcheck?.test !== undefined) {
      const t = s.healthcheck.test as string[] | string;
      const cmd = Array.isArray(t) ? (t[0] === "CMD" ? t.slice(1) : argv(t[1] ?? "")) : argv(t);
      const { file, args } = program(cmd);
      assert.is(file, LAUNCHER, `${name}: healthcheck`);
      assert.is(args[0], "health", `${name}: healthcheck`);
    }
    assert.not.ok(s.healthcheck?.disable, `${name}: the image's HEALTHCHECK stays on`);
  }
  // The commands its comments tell a user to run inside the container are chjob's.
  const text = read("docker-compose.yml");
  const told = [...text.matchAll(/docker compose exec (?:--index \d+ )?chjob chjob (\S+)/g)].map((m) => m[1]!);
  assert.ok(told.length > 0);
  for (const sub of told) assert.ok(known.has(sub), `chjob ${sub}`);
});

test.run();
