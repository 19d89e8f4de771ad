// Go-style durations (time.ParseDuration), as the original service's environment uses them:
// `10m`, `30s`, `24h`, `1h30m`, `500ms`, `1.5s`, `2h45m30.5s`. Units: ns, us (µs, μs), ms, s, m, h.
// A bare `0` is allowed (as in Go); any other number needs a unit. Negative durations are rejected.

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "\u00b5s": 1e-3, // µ (micro sign)
  "\u03bcs": 1e-3, // μ (Greek mu)
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

// One `<number><unit>` component; longest units first so `ms` is not read as `m` + garbage.
const COMPONENT = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/;

/**
 * Parses a Go-style duration into milliseconds (possibly fractional for sub-millisecond units).
 * Returns undefined for empty text, garbage, a missing unit, a negative sign or an absurdly large
 * value (beyond Number.MAX_SAFE_INTEGER ms).
 */
export function parseDuration(text: string): number | undefined {
  let rest = text.trim();
  if (rest.startsWith("+")) rest = rest.slice(1);
  if (rest === "") return undefined;
  if (rest === "0") return 0;
  let total = 0;
  while (rest !== "") {
    const m = COMPONENT.exec(rest);
    if (!m) return undefined;
    const [whole, num, unit] = m as unknown as [string, string, string];
    const factor = UNIT_MS[unit];
    if (factor === undefined) return undefined;
    total += Number(num) * factor;
    rest = rest.slice(whole.length);
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) return undefined;
  return total;
}
