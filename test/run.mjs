// Runs each compiled test file in its own node process (chDB binds one data
// path per process), one after another, and sums up uvu's counts.
// Usage: node test/run.mjs [pattern]   (pattern: a regular expression on the file name)
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = "dist/test";
const pattern = new RegExp(process.argv[2] ?? ".");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".test.js") && pattern.test(f))
  .sort();
let passed = 0;
let failed = 0;
let skipped = 0;
const failedFiles = [];
for (const file of files) {
  const started = Date.now();
  process.stdout.write(`\n## ${file}\n`);
  const out = await new Promise((resolve) => {
    let text = "";
    const child = spawn(process.execPath, ["--enable-source-maps", join(dir, file)], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { UV_THREADPOOL_SIZE: "16", ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    });
    child.stdout.on("data", (d) => {
      text += d;
      process.stdout.write(d);
    });
    child.on("exit", (code, signal) => resolve({ text, code, signal }));
  });
  const count = (label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(out.text)?.[1] ?? 0);
  const total = count("Total");
  const ok = count("Passed");
  const skip = count("Skipped");
  passed += ok;
  skipped += skip;
  const bad = total - ok - skip;
  if (bad > 0 || out.code !== 0) {
    failed += Math.max(bad, 1);
    failedFiles.push(`${file} (exit ${out.code ?? out.signal})`);
  }
  process.stdout.write(`   ${file}: ${ok}/${total} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
if (files.length === 0) {
  console.error(`no test files match ${pattern}`);
  process.exit(1);
}
if (failedFiles.length) console.log(`\nfailed: ${failedFiles.join(", ")}`);
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 ? 1 : 0);
