// Preloaded into the service (node --require dist/bench/probe.cjs) by
// `npm run bench -- --probe` (and by the fan-out workload): measures the event
// loop's delay and when the service last wrote to each HTTP/2 stream (the
// server's side of a fan-out), and with BENCH_PROFILE_DIR set CPU-profiles the
// main thread. On SIGUSR2 it writes what it saw since the last signal to
// BENCH_PROBE_OUT (and the profile of that window to
// BENCH_PROFILE_DIR/service-<pid>-<n>.cpuprofile) and starts over.
// CommonJS, no async file I/O: it takes no libuv pool thread.
import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import { Session } from "node:inspector";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";

const out = process.env.BENCH_PROBE_OUT;
const profileDir = process.env.BENCH_PROFILE_DIR;
if (out) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let seq = 0;
  let session: Session | undefined;
  // grpc-js reads http2.createServer when it binds, after this preload ran.
  let lastWrite = new Map<object, number>();
  for (const name of ["createServer", "createSecureServer"] as const) {
    const create = http2[name] as (...args: unknown[]) => http2.Http2Server;
    (http2 as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
      const server = create(...args);
      server.on("stream", (stream: http2.ServerHttp2Stream) => {
        const write = stream.write;
        stream.write = function (this: http2.ServerHttp2Stream, ...a: unknown[]) {
          lastWrite.set(stream, performance.now());
          return (write as (...x: unknown[]) => boolean).apply(this, a);
        } as typeof stream.write;
      });
      return server;
    };
  }
  const startProfile = () => {
    if (!profileDir) return;
    session ??= new Session();
    session.connect();
    session.post("Profiler.enable", () => session!.post("Profiler.start"));
  };
  startProfile();
  process.on("SIGUSR2", () => {
    const n = ++seq;
    const ms = (ns: number) => ns / 1e6;
    const writes = [...lastWrite.values()];
    lastWrite = new Map();
    // performance.now() and process.hrtime are one clock (libuv's hrtime) from different origins: the
    // offset turns the write times into the machine's monotonic clock, which other processes read too.
    const toMono = Number(process.hrtime.bigint()) / 1e6 - performance.now();
    let [first, last] = [Infinity, -Infinity];
    for (const w of writes) [first, last] = [Math.min(first, w), Math.max(last, w)];
    const streams = {
      count: writes.length,
      lastWriteSpreadMs: writes.length ? last - first : 0,
      ...(writes.length ? { lastWriteMonoMs: { first: first + toMono, last: last + toMono } } : {}),
      // How the last writes spread: where the median, 90th and 99th percentile stream's came, after the first.
      lastWriteQuantilesMs: quantiles(writes, first),
    };
    const report = () =>
      writeFileSync(out, JSON.stringify({ seq: n, loopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max), mean: ms(delay.mean) }, streams }));
    if (!session) {
      report();
      delay.reset();
      return;
    }
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(join(profileDir!, `service-${process.pid}-${n}.cpuprofile`), JSON.stringify((res as { profile: unknown }).profile));
      session!.disconnect();
      report();
      delay.reset();
      startProfile();
    });
  });
}

function quantiles(xs: number[], from: number): { p50: number; p90: number; p99: number } {
  const sorted = xs.map((x) => x - from).sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
  return { p50: at(50), p90: at(90), p99: at(99) };
}
