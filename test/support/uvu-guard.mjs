// uvu with suites that say why their setup failed. uvu 0.5.6 drops the error of a `before` hook
// that throws: its runner's `finally` returns, so the suite prints "(0 / N)" with no reason, no
// test runs and the process exits 0. Here each `before` hook that throws prints its error (one
// "setup failed:" line that test/run.mjs quotes, then the stack) and makes the process exit 1.
//
// The test files import "uvu" as usual: test/run.mjs preloads ./uvu-guard-hooks.mjs, which makes
// "uvu" resolve to this module for them. (Run alone, `node dist/test/x.test.js`, a test file gets
// plain uvu.)
import * as uvu from "uvu";

export * from "uvu";

let setupFailed = false;
process.on("exit", () => {
  // uvu sets process.exitCode when its run ends; this listener runs after that.
  if (setupFailed) process.exitCode = 1;
});

/** The error's first line, and the rest of what its stack says. */
function describe(err) {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  const [first = "", ...rest] = text.split("\n");
  return { first, rest };
}

function guard(test, name) {
  const before = test.before;
  const guarded = (hook) =>
    before(async (state) => {
      try {
        await hook(state);
      } catch (err) {
        setupFailed = true;
        const { first, rest } = describe(err);
        const which = name ? `"${name}"` : "the default suite";
        process.stdout.write(
          `\n  setup failed: ${which}: ${first}\n` +
            rest.map((line) => `    ${line.trim()}\n`).join("") +
            `    (its before hook threw, so none of its tests ran)\n`,
        );
        throw err;
      }
    });
  guarded.each = before.each;
  test.before = guarded;
  return test;
}

export function suite(name = "", state = {}) {
  return guard(uvu.suite(name, state), name);
}

export const test = guard(uvu.test, "");
