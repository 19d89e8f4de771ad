// The README's table of configuration variables is generated from the table in
// src/config/variables.ts; these tests fail when the README's copy is stale.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  configTableBlock,
  currentConfigTable,
  renderConfigTable,
  REGENERATE,
  TABLE_END,
  TABLE_START,
  withConfigTable,
} from "../src/config/docs.js";
import { CONFIG_VARIABLES, EXTRA_VARIABLES, GROUPS, VARIABLE_LIST } from "../src/config/index.js";

// dist/test/config-docs.test.js -> repo root
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

test("README.md's configuration table is the generated one", () => {
  const current = currentConfigTable(README);
  if ("error" in current) assert.unreachable(`${current.error}; put the two markers in the Configuration section and run \`${REGENERATE}\``);
  else if (current.text !== configTableBlock()) {
    const have = current.text.split("\n");
    const want = configTableBlock().split("\n");
    const i = want.findIndex((line, n) => have[n] !== line);
    assert.unreachable(
      `README.md's configuration table differs from src/config/variables.ts; regenerate it with \`${REGENERATE}\`\n` +
        `first difference, line ${i + 1} of the table:\n  README:    ${have[i] ?? "(nothing)"}\n  generated: ${want[i] ?? "(nothing)"}`,
    );
  }
});

test("the markers sit in the Configuration section", () => {
  const section = README.indexOf("## Configuration");
  const next = README.indexOf("\n## ", section + 1);
  assert.ok(section >= 0);
  assert.ok(README.indexOf(TABLE_START) > section && README.indexOf(TABLE_END) < (next < 0 ? Infinity : next));
});

test("the table: every variable once, a group, one line of help, a parser unless read elsewhere", () => {
  const names = VARIABLE_LIST.map((v) => v.name);
  assert.is(new Set(names).size, names.length);
  assert.equal([...CONFIG_VARIABLES, ...EXTRA_VARIABLES].sort(), [...names].sort());
  for (const v of VARIABLE_LIST) {
    assert.match(v.name, /^[A-Z][A-Z0-9_]+$/);
    assert.ok(v.group in GROUPS, v.name);
    assert.ok(v.help.length > 0 && !v.help.includes("\n"), `${v.name}: one line of help`);
    assert.ok(v.parse !== undefined || v.name === "UV_THREADPOOL_SIZE", `${v.name} has a parser`);
    assert.ok(renderConfigTable().includes(`| \`${v.name}\` |`), `${v.name} in the README's table`);
  }
  for (const secret of ["AWS_SECRET_ACCESS_KEY", "CHJOB_AUTH_TOKEN", "DEKART_POSTGRES_PASSWORD"]) {
    assert.is(VARIABLE_LIST.find((v) => v.name === secret)?.secret, true, secret);
  }
  for (const url of ["DEKART_CLICKHOUSE_DATA_CONNECTION", "CHJOB_DATABASE_URL"]) {
    assert.is(VARIABLE_LIST.find((v) => v.name === url)?.secret, "password", url);
  }
});

test("regenerating replaces what is between the markers and nothing else", () => {
  const stale = `# x\n\nbefore\n\n${TABLE_START}\n| old | table |\n${TABLE_END}\n\nafter\n`;
  const fresh = withConfigTable(stale);
  assert.ok(fresh.startsWith(`# x\n\nbefore\n\n${TABLE_START}\n<!-- generated`));
  assert.ok(fresh.endsWith(`\n\n${TABLE_END}\n\nafter\n`));
  assert.not.ok(fresh.includes("| old | table |"));
  assert.is(withConfigTable(fresh), fresh, "idempotent");
  assert.equal(currentConfigTable(fresh), { text: configTableBlock() });
  assert.ok("error" in currentConfigTable("no markers"));
  assert.ok("error" in currentConfigTable(`${TABLE_START}\n${TABLE_END}\n${TABLE_START}\n${TABLE_END}`));
  assert.throws(() => withConfigTable("no markers"), /config-table:start/);
});

test.run();
