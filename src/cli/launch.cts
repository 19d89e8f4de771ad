#!/usr/bin/env node
// The `chjob` executable. A CommonJS entry on purpose: it runs before node's
// libuv thread pool starts (an ES module entry is itself read through the pool),
// so it can still size the pool. chDB holds one pool thread per running query
// for the query's whole life, and the embedded S3 server and the control
// session (progress, KILL QUERY) need threads while exports run: node's
// default of 4 would let four exports starve them.
import { existsSync, readFileSync } from "node:fs";
import { parseEnv } from "node:util";

if (!process.env.UV_THREADPOOL_SIZE) {
  let fromFile: NodeJS.Dict<string> = {};
  try {
    if (existsSync(".env")) fromFile = parseEnv(readFileSync(".env", "utf8"));
  } catch {
    // The configuration step reports an unreadable .env properly.
  }
  const slots = Number(process.env.CHJOB_MAX_CONCURRENT_JOBS ?? fromFile.CHJOB_MAX_CONCURRENT_JOBS ?? 8);
  // Each export and the control session may hold a thread; 8 more for file and DNS work.
  process.env.UV_THREADPOOL_SIZE = String(Math.min(1024, (Number.isSafeInteger(slots) && slots > 0 ? slots : 8) + 1 + 8));
}

// On Node 20 (end of life since April 2026) the AWS SDK prints a 7-line warning on
// stderr at every start: its releases after early January 2027 need Node 22. The
// locked SDK runs on 20, so chjob says so in one log line instead (`chjob serve`),
// unless the variable is set (to anything) by the user.
if (process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED === undefined && Number(process.versions.node.split(".")[0]) < 22) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
}

void import("./main.js");
