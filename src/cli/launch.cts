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

void import("./main.js");
