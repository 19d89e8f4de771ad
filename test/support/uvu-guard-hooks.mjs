// Preloaded by test/run.mjs (node --import): registers itself as a module resolve hook that makes
// `import … from "uvu"` of every test file load ./uvu-guard.mjs, whose suites report the error
// of a failing before hook (uvu 0.5.6 drops it). That module itself gets the real uvu.
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

const GUARD = new URL("./uvu-guard.mjs", import.meta.url).href;

// Loaded twice: by --import on the main thread, which registers the hooks, and then on the
// hooks' own thread, where only `resolve` below is used.
if (isMainThread) register(import.meta.url);

export async function resolve(specifier, context, nextResolve) {
  if (specifier === "uvu" && context.parentURL !== GUARD) return { url: GUARD, shortCircuit: true };
  return nextResolve(specifier, context);
}
