// chdb lists its engine for four platforms as optional dependencies, but the
// registry this project is built against serves only linux-x64: npm then
// leaves the other three out of package-lock.json and `npm ci` refuses the lock
// as out of sync. This adds them back as platform-bound optional entries
// (npm skips them on other platforms, and fetches them by version where they
// exist). Run after `npm install` changes the lock: `node scripts/lock-platforms.mjs`.
import { readFileSync, writeFileSync } from "node:fs";

const PLATFORMS = {
  "@chdb/lib-darwin-arm64": { cpu: ["arm64"], os: ["darwin"] },
  "@chdb/lib-darwin-x64": { cpu: ["x64"], os: ["darwin"] },
  "@chdb/lib-linux-arm64-gnu": { cpu: ["arm64"], libc: ["glibc"], os: ["linux"] },
};

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
const chdb = lock.packages["node_modules/chdb"];
let added = 0;
for (const [name, platform] of Object.entries(PLATFORMS)) {
  const key = `node_modules/${name}`;
  const version = chdb?.optionalDependencies?.[name];
  if (!version || lock.packages[key]) continue;
  lock.packages[key] = { version, ...platform, license: "Apache-2.0", optional: true };
  added++;
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))));
writeFileSync("package-lock.json", `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} platform entries added`);
