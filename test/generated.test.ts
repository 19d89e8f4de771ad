// gen/ is what the proto generates, and the proto passes buf lint.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { test } from "uvu";
import * as assert from "uvu/assert";

const run = promisify(execFile);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]));
}

test("buf lint passes", async () => {
  await run("npx", ["buf", "lint"]);
});

test("gen/ matches what buf generate makes from proto/", async () => {
  const out = mkdtempSync(join(tmpdir(), "chjob-gen-"));
  try {
    const template = readFileSync("buf.gen.yaml", "utf8").replace(/out: gen/, `out: ${out}`);
    assert.not.equal(template, readFileSync("buf.gen.yaml", "utf8"), "buf.gen.yaml has `out: gen`");
    writeFileSync(join(out, "buf.gen.yaml"), template);
    await run("npx", ["buf", "generate", "--template", join(out, "buf.gen.yaml")]);
    const fresh = files(out).filter((f) => f.endsWith(".ts")).map((f) => relative(out, f)).sort();
    const committed = files("gen").map((f) => relative("gen", f)).sort();
    assert.equal(committed, fresh, "same files");
    for (const f of fresh) assert.fixture(readFileSync(join("gen", f), "utf8"), readFileSync(join(out, f), "utf8"));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test.run();
