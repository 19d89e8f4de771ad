// What a fresh `npm ci` says, from package.json and package-lock.json (no install):
// no dependency's install script left undecided, and on Node 20.12, 22 and 24 no
// engine warning.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { engines: { node: string }; allowScripts?: Record<string, boolean> };
interface Locked {
  version?: string;
  dev?: boolean;
  hasInstallScript?: boolean;
  engines?: { node?: string } | string[];
}
const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as { packages: Record<string, Locked> };
const locked = Object.entries(lock.packages)
  .filter(([path]) => path !== "")
  .map(([path, p]) => ({ name: path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length), ...p }));

test("every dependency with an install script is decided in allowScripts (npm 11.19 lists undecided ones after npm ci)", () => {
  const undecided = locked.filter((p) => p.hasInstallScript && typeof pkg.allowScripts?.[p.name] !== "boolean").map((p) => `${p.name}@${p.version}`);
  assert.equal(undecided, []);
});

/** Whether Node `version` satisfies an engines range of the forms the lock file has (>=, ^, N.*, *, ||). */
function admits(range: string, [major, minor]: [number, number]): boolean {
  return range.split("||").some((alt) => {
    const r = alt.trim();
    if (r === "*" || r === "") return true;
    let m = /^>=\s*v?(\d+)(?:\.(\d+|x))?/.exec(r);
    if (m) return major > Number(m[1]) || (major === Number(m[1]) && minor >= (m[2] === undefined || m[2] === "x" ? 0 : Number(m[2])));
    if ((m = /^\^(\d+)(?:\.|$)/.exec(r)) || (m = /^(\d+)\.\*$/.exec(r))) return major === Number(m[1]);
    throw new Error(`engines range not understood: ${range}`);
  });
}

test("on Node 20.12, 22 and 24 npm ci warns of no engine (README: Node.js versions)", () => {
  assert.is(pkg.engines.node, ">=20.12");
  for (const node of [[20, 12], [22, 0], [24, 0]] as Array<[number, number]>) {
    assert.ok(admits(pkg.engines.node, node), `chjob's engines admit ${node.join(".")}`);
    const warns = locked.filter((p) => !Array.isArray(p.engines) && p.engines?.node && !admits(p.engines.node, node));
    assert.equal(
      warns.map((p) => `${p.name}${p.dev ? " (dev)" : ""}`),
      [],
      `on Node ${node.join(".")}`,
    );
  }
});

test.run();
