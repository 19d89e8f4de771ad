// Keeps the documentation self-contained: every relative link in README.md and docs/*.md points to a
// file of this repository (and to a heading that exists, for links with an #anchor), no file refers
// to documents outside the repository, and every configuration variable is documented.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { CONFIG_VARIABLES, EXTRA_VARIABLES } from "../src/config/index.js";

// dist/test/docs.test.js -> repo root
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const read = (name: string) => readFileSync(join(ROOT, name), "utf8");

const MARKDOWN = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** The text outside fenced code blocks, as lines (fenced lines become empty, keeping line numbers). */
function prose(text: string): string[] {
  let fence: string | undefined;
  return text.split("\n").map((line) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === undefined) fence = m[1]![0]!.repeat(m[1]!.length);
      else if (m[1]!.startsWith(fence)) fence = undefined;
      return "";
    }
    return fence === undefined ? line : "";
  });
}

/** A line with its code spans blanked, so that `[a](b)` inside backticks is not taken for a link. */
const withoutCodeSpans = (line: string) => line.replace(/(`+)(?:(?!\1)[\s\S])*?\1/g, "code");

interface Link {
  file: string;
  line: number;
  target: string;
}

function links(file: string): Link[] {
  const out: Link[] = [];
  prose(read(file)).forEach((raw, i) => {
    const line = withoutCodeSpans(raw);
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ file, line: i + 1, target: m[1]! });
    const ref = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(line);
    if (ref) out.push({ file, line: i + 1, target: ref[1]! });
  });
  return out;
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, each space a hyphen; repeats get -1, -2, … */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(read(file))) {
    const h = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!h) continue;
    const text = h[1]!.replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/<[^>]+>/g, "");
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\s_-]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

test("the Markdown files to check are there", () => {
  assert.ok(MARKDOWN.includes("docs/api.md") && MARKDOWN.includes("docs/engines.md"), MARKDOWN.join(", "));
  assert.ok(links("README.md").length >= 5, "README.md has links");
});

test("every relative link in README.md and docs/*.md names a file of this repository, and an existing heading", () => {
  const problems: string[] = [];
  let checked = 0;
  for (const file of MARKDOWN) {
    for (const { line, target } of links(file)) {
      if (isExternal(target)) continue;
      checked++;
      const where = `${file}:${line}: ${target}`;
      const [pathPart, anchor] = target.split("#", 2) as [string, string | undefined];
      const path = pathPart === "" ? join(ROOT, file) : resolve(ROOT, dirname(file), decodeURIComponent(pathPart));
      const inside = relative(ROOT, path);
      if (inside.startsWith("..") || inside.startsWith(sep) || resolve(ROOT, inside) !== path) {
        problems.push(`${where}: points outside the repository`);
        continue;
      }
      if (!existsSync(path)) {
        problems.push(`${where}: no such file`);
        continue;
      }
      if (anchor && path.endsWith(".md") && statSync(path).isFile() && !anchors(inside).has(anchor.toLowerCase())) {
        problems.push(`${where}: no heading with anchor #${anchor} in ${inside}`);
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} relative links found`);
  assert.equal(problems, [], problems.join("\n"));
});

/** The repository's files: tracked and new ones, without ignored ones (node_modules, dist, data). */
function repositoryFiles(): string[] {
  try {
    const out = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
    // A symlinked node_modules shows up as an untracked entry: only regular files count.
    return out.split("\0").filter((f) => f !== "" && existsSync(join(ROOT, f)) && statSync(join(ROOT, f)).isFile());
  } catch {
    // No git at hand: walk the tree, leaving out what .gitignore leaves out.
    const skip = new Set(["node_modules", "dist", ".git", ".chjob", "scratch"]);
    const walk = (dir: string): string[] =>
      readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
        const rel = dir ? `${dir}/${e.name}` : e.name;
        if (e.isDirectory()) return skip.has(e.name) ? [] : walk(rel);
        return e.isFile() ? [rel] : [];
      });
    return walk("");
  }
}

test("no file refers to documents outside the repository", () => {
  // Written in two parts so that this file does not match itself.
  const needles = ["../" + "shared/", "CONTRACT" + " §", "CONTRACT" + ".md"];
  const files = repositoryFiles();
  assert.ok(files.includes("README.md") && files.includes("src/app.ts"), `${files.length} files listed`);
  const hits: string[] = [];
  for (const file of files) {
    if (file.startsWith("node_modules/") || file.startsWith("dist/")) continue;
    const text = readFileSync(join(ROOT, file), "utf8");
    text.split("\n").forEach((line, i) => {
      if (needles.some((needle) => line.includes(needle))) hits.push(`${file}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.equal(hits, [], hits.join("\n"));
});

test("every configuration variable is in a table of the README's Configuration section", () => {
  const readme = read("README.md");
  const start = readme.indexOf("\n## Configuration\n");
  assert.ok(start >= 0, "README has a Configuration section");
  const next = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, next < 0 ? undefined : next);
  const documented = new Set<string>();
  for (const line of section.split("\n")) {
    if (!line.startsWith("|")) continue;
    for (const m of (line.split("|")[1] ?? "").matchAll(/`([A-Z][A-Z0-9_]+)`/g)) documented.add(m[1]!);
  }
  const missing = [...CONFIG_VARIABLES, ...EXTRA_VARIABLES].filter((v) => !documented.has(v));
  assert.equal(missing, [], `not documented in the README: ${missing.join(", ")}`);
});

test("the anchor rule matches GitHub's for the README's headings", () => {
  const a = anchors("README.md");
  for (const anchor of ["7-call-the-api-with-buf-curl-reflection-no-proto-files", "the-chjob-command", "engine-notes", "clickhouse-dsn-forms"]) {
    assert.ok(a.has(anchor), anchor);
  }
  assert.ok(anchors("docs/engines.md").has("finding-a-jobs-export"));
});

test.run();
