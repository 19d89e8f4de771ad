// Runs each compiled test file in its own node process (chDB binds one data
// path per process), one after another, and sums up uvu's counts.
// Usage: node test/run.mjs [--dir <dir>] [pattern]
//   pattern: a regular expression on the file name; --dir: where the *.test.js files are
//   (default dist/test; not searched recursively, so dist/test/fixtures stays out).
//
// A file counts as failed, with its reason listed at the end, when a test fails, when a suite's
// setup (a before hook) throws (./support/uvu-guard.mjs, preloaded through
// ./support/uvu-guard-hooks.mjs, prints that error: uvu 0.5.6 alone would not), when it prints
// no uvu summary (it crashed or exited early: the end of its stderr is quoted), or when it exits
// non-zero. Tests that need a program the machine lacks are skipped (failed under CI=true) by
// ./support/requirements.ts; the missing programs and how to install them are listed at the end.
// The closing line is always "N passed, N failed, N skipped".
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
let dir = "dist/test";
const dirAt = args.indexOf("--dir");
if (dirAt >= 0) {
  dir = args[dirAt + 1] ?? "";
  args.splice(dirAt, 2);
}
const pattern = new RegExp(args[0] ?? ".");
const guardHooks = fileURLToPath(new URL("./support/uvu-guard-hooks.mjs", import.meta.url));
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.js") && pattern.test(f))
  .sort();
if (files.length === 0) {
  console.error(`no test files in ${dir} match ${pattern}`);
  process.exit(1);
}

// uvu colours its summary when FORCE_COLOR is set.
// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts the colour codes this removes
const plain = (text) => text.replace(/\x1b\[[0-9;]*m/g, "");
const lastLines = (text, n) => text.split("\n").filter((line) => line.trim() !== "").slice(-n).join("\n");

let passed = 0;
let failed = 0;
let skipped = 0;
const failedFiles = [];
/** program name -> { verdict, why, install, files } from the lines of ./support/requirements.ts */
const missing = new Map();

for (const file of files) {
  const started = Date.now();
  process.stdout.write(`\n## ${file}\n`);
  const out = await new Promise((resolve) => {
    let text = "";
    let errText = "";
    const child = spawn(process.execPath, ["--enable-source-maps", "--import", guardHooks, join(dir, file)], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { UV_THREADPOOL_SIZE: "16", ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    });
    child.stdout.on("data", (d) => {
      text += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      errText += d;
      if (errText.length > 100_000) errText = errText.slice(-50_000);
      process.stderr.write(d);
    });
    const done = (code, signal) => resolve({ text: plain(text), errText: plain(errText), code, signal });
    child.on("close", done);
    // A grandchild that kept the pipes open must not hold up the run.
    child.on("exit", (code, signal) => setTimeout(() => done(code, signal), 5000).unref());
  });

  // uvu's summary ends the output ("  Total:     3", …): the last one counts (a test's failure
  // message may quote the output of another run).
  const count = (label) => {
    const all = [...out.text.matchAll(new RegExp(`^  ${label}:\\s+(\\d+)\\s*$`, "gm"))];
    return all.length ? Number(all[all.length - 1][1]) : undefined;
  };
  const total = count("Total");
  const ok = count("Passed") ?? 0;
  const skip = count("Skipped") ?? 0;
  const exit = out.code ?? out.signal;
  passed += ok;
  skipped += skip;

  for (const m of out.text.matchAll(/^ {2}(skipped|failed): needs (\S+), which (.*?); .*\(install: (.*)\)$/gm)) {
    const [, verdict, name, why, install] = m;
    const entry = missing.get(name) ?? { verdict, why, install, files: [] };
    entry.files.push(file);
    missing.set(name, entry);
  }

  // uvu's Total is the tests that were to run (skipped ones are not in it).
  const reasons = [...out.text.matchAll(/^ {2}setup failed: (.*)$/gm)].map((m) => `setup failed: ${m[1]}`);
  let bad = 0;
  if (total === undefined) {
    bad = 1;
    const tail = lastLines(out.errText, 8);
    reasons.push(`printed no uvu summary, exit ${exit}${tail ? `; stderr ends:\n      ${tail.split("\n").join("\n      ")}` : ""}`);
  } else {
    bad = total - ok;
    if (bad > 0 && reasons.length === 0) reasons.push(`${bad} of ${total} tests failed`);
    if (out.code !== 0) {
      bad = Math.max(bad, 1);
      reasons.push(`exit ${exit}`);
    }
  }
  if (bad > 0) {
    failed += bad;
    failedFiles.push(`${file}: ${reasons.join("; ")}`);
  }
  const counts = total === undefined ? "no summary" : `${ok}/${total}${skip ? `, ${skip} skipped` : ""}`;
  process.stdout.write(`   ${file}: ${counts} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

if (missing.size) {
  console.log("");
  for (const [name, m] of missing) {
    const outcome = m.verdict === "failed" ? "failed (CI=true)" : "skipped";
    console.log(`missing: ${name}, which ${m.why}: its tests in ${m.files.join(", ")} ${outcome}; install: ${m.install}`);
  }
}
if (failedFiles.length) console.log(`\nfailed:\n${failedFiles.map((f) => `  ${f}`).join("\n")}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
