// Regenerates the table of configuration variables in README.md (between
// <!-- config-table:start --> and <!-- config-table:end -->) from src/config/variables.ts.
// Usage: npm run docs:config            (builds, then rewrites README.md)
//        node scripts/config-docs.mjs --check   (exit 1 when README.md is out of date)
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { configTableBlock, currentConfigTable, withConfigTable, REGENERATE } from "../dist/src/config/docs.js";

const readmePath = join(dirname(fileURLToPath(import.meta.url)), "..", "README.md");
const readme = readFileSync(readmePath, "utf8");
const current = currentConfigTable(readme);
if ("error" in current) {
  console.error(`config-docs: ${current.error}`);
  process.exit(1);
}
const upToDate = current.text === configTableBlock();
if (process.argv.includes("--check")) {
  if (!upToDate) console.error(`config-docs: README.md's configuration table is out of date; run \`${REGENERATE}\``);
  process.exit(upToDate ? 0 : 1);
}
if (upToDate) {
  console.log("config-docs: README.md's configuration table is up to date");
} else {
  writeFileSync(readmePath, withConfigTable(readme));
  console.log("config-docs: README.md's configuration table regenerated");
}
