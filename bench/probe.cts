// Preloaded into the service (node --require dist/bench/probe.cjs) by
// `npm run bench -- --probe`: measures the event loop's delay and, with
// BENCH_PROFILE_DIR set, CPU-profiles the main thread. On SIGUSR2 it writes
// what it saw since the last signal to BENCH_PROBE_OUT (and the profile of
// that window to BENCH_PROFILE_DIR/service-<n>.cpuprofile) and starts over.
// CommonJS, no async file I/O: it takes no libuv pool thread.
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";

const out = process.env.BENCH_PROBE_OUT;
const profileDir = process.env.BENCH_PROFILE_DIR;
if (out) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let seq = 0;
  let session: Session | undefined;
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
    const report = () =>
      writeFileSync(out, JSON.stringify({ seq: n, loopDelayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max), mean: ms(delay.mean) } }));
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
