// Whether the standard OpenTelemetry variables turn tracing on (kept apart from
// ./tracing.ts, so that the SDK is loaded only when they do).

/** Why tracing is off, or where the spans go. */
export type TracingDecision = { on: false; why: string } | { on: true; endpoint: string };

/** Reads the standard variables: tracing is on when an OTLP endpoint is given and nothing turns it off. */
export function tracingDecision(env: Record<string, string | undefined>): TracingDecision {
  const get = (name: string) => env[name]?.trim() || undefined;
  if (get("OTEL_SDK_DISABLED")?.toLowerCase() === "true") return { on: false, why: "OTEL_SDK_DISABLED=true" };
  const exporters = get("OTEL_TRACES_EXPORTER")?.toLowerCase().split(",").map((s) => s.trim());
  if (exporters && !exporters.includes("otlp")) return { on: false, why: `OTEL_TRACES_EXPORTER=${exporters.join(",")} (chjob exports otlp only)` };
  const traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
  const base = get("OTEL_EXPORTER_OTLP_ENDPOINT");
  if (traces) return { on: true, endpoint: traces };
  if (base) return { on: true, endpoint: `${base.replace(/\/+$/, "")}/v1/traces` };
  return { on: false, why: "no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" };
}
