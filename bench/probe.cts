// Preloaded into the service (node --require dist/bench/probe.cjs) by
// `npm run bench -- --probe` (and by the fan-out workload): measures the event
// loop's delay and when the service last wrote to each HTTP/2 stream (the
// server's side of a fan-out), and with BENCH_PROFILE_DIR set CPU-profiles the
// main thread. On SIGUSR2 it writes what it saw since the last signal to
// BENCH_PROBE_OUT (and the profile of that window to
// BENCH_PROFILE_DIR/service-<n>.cpuprofile) and starts over.
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
    const streams = { count: writes.length, lastWriteSpreadMs: writes.length ? Math.max(...writes) - Math.min(...writes) : 0 };
    const report = () =>
      writeFileSync(out, JSON.stringify({ seq: n, loopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max), mean: ms(delay.mean) }, streams }));
    if (!session) {
      report();
      delay.reset();
      return;
    }
    session.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(join(profileDir!, `service-${n}.cpuprofile`), JSON.stringify((res as { profile: unknown }).profile));
      session!.disconnect();
      report();
      delay.reset();
      startProfile();
    });
  });
}
