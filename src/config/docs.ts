// The README's table of variables, generated from the table in ./variables.ts. It sits between
// two marker comments in README.md; `npm run docs:config` rewrites it there, and a test fails when
// the README's copy differs.

import { GROUPS, VARIABLE_LIST, type Group, type Variable } from "./variables.js";

export const TABLE_START = "<!-- config-table:start -->";
export const TABLE_END = "<!-- config-table:end -->";
export const REGENERATE = "npm run docs:config";

/** A table cell: a `|` would end it. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

function defaultCell(v: Variable): string {
  if (v.shownDefault !== undefined) return v.shownDefault;
  if (typeof v.default === "string") return `\`${v.default}\``;
  return "unset";
}

function secretCell(v: Variable): string {
  if (v.secret === true) return "yes";
  if (v.secret === "password") return "its password";
  return "";
}

/** The Markdown between the markers (without them): one table per group. */
export function renderConfigTable(): string {
  const out: string[] = [`<!-- generated from src/config/variables.ts by \`${REGENERATE}\`: edit there, not here -->`];
  for (const [group, title] of Object.entries(GROUPS) as Array<[Group, string]>) {
    const rows = VARIABLE_LIST.filter((v) => v.group === group);
    if (rows.length === 0) continue;
    out.push("", `**${title}**`, "", "| variable | meaning | default | secret |", "| --- | --- | --- | --- |");
    for (const v of rows) out.push(`| \`${v.name}\` | ${cell(v.help)} | ${cell(defaultCell(v))} | ${secretCell(v)} |`);
  }
  return out.join("\n");
}

/** What goes between the markers: the tables, a blank line after them so the last one ends. */
export function configTableBlock(): string {
  return `\n${renderConfigTable()}\n\n`;
}

/** The README's current text between the markers, or what is wrong with the markers. */
export function currentConfigTable(readme: string): { text: string } | { error: string } {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < 0 || end < start) return { error: `README.md has no ${TABLE_START} … ${TABLE_END} block` };
  if (readme.indexOf(TABLE_START, start + 1) >= 0 || readme.indexOf(TABLE_END, end + 1) >= 0) {
    return { error: `README.md has more than one ${TABLE_START} … ${TABLE_END} block` };
  }
  return { text: readme.slice(start + TABLE_START.length, end) };
}

/** The README with the generated tables between the markers. */
export function withConfigTable(readme: string): string {
  const current = currentConfigTable(readme);
  if ("error" in current) throw new Error(current.error);
  const start = readme.indexOf(TABLE_START) + TABLE_START.length;
  return `${readme.slice(0, start)}${configTableBlock()}${readme.slice(readme.indexOf(TABLE_END))}`;
}
