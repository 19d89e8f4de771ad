// Traces with OpenTelemetry, on only when the standard variables ask for an
// OTLP endpoint. A span per RPC (continuing the caller's W3C traceparent from
// the call's metadata), and a span per phase of each job (queue, export, copy)
// as children of the CreateJob span: its traceparent is stored with the job, so
// the replica that claims the job continues the same trace. The export's
// context goes on to ClickHouse as a `traceparent` HTTP header.
//
// The SDK reads its own variables: OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*,
// OTEL_EXPORTER_OTLP_(TRACES_)HEADERS/TIMEOUT/COMPRESSION, OTEL_RESOURCE_ATTRIBUTES.
import {
  context,
  diag,
  isSpanContextValid,
  DiagLogLevel,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import {
  ATTR_ERROR_TYPE,
  ATTR_RPC_METHOD,
  ATTR_RPC_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
} from "@opentelemetry/semantic-conventions";
import { type Metadata, ServerInterceptingCall, status as grpcStatus, type ServerInterceptor } from "@grpc/grpc-js";
import type { Subscription } from "rxjs";
import { isTerminal, JobStatus, type JobSnapshot } from "../jobs/job.js";
import type { Logger } from "../log.js";
import type { JobStore } from "../store/job-store.js";
import type { JobPhase, JobRunTelemetry, RunnerTelemetry } from "./hooks.js";
import { abandonedStatus, rpcName } from "./rpc.js";

export interface TracingOptions {
  env: Record<string, string | undefined>;
  /** service.instance.id, unless OTEL_RESOURCE_ATTRIBUTES names one. */
  replicaId: string;
  version: string;
  log: Logger;
}

const metadataGetter: TextMapGetter<Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const values = md.get(key).map(String);
    return values.length === 0 ? undefined : values;
  },
};

/** gRPC codes a server span counts as its own error (OpenTelemetry's gRPC conventions). */
const SERVER_ERRORS = new Set([
  grpcStatus.UNKNOWN,
  grpcStatus.DEADLINE_EXCEEDED,
  grpcStatus.UNIMPLEMENTED,
  grpcStatus.INTERNAL,
  grpcStatus.UNAVAILABLE,
  grpcStatus.DATA_LOSS,
]);

export class Tracing {
  readonly endpoint: string;
  private readonly provider: NodeTracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();
  private readonly subscriptions: Subscription[] = [];

  /** Starts the SDK (see ./otel-env.ts for when): spans go to `endpoint`. */
  constructor(
    endpoint: string,
    private readonly opts: TracingOptions,
  ) {
    this.endpoint = endpoint;
    const { log, env } = opts;
    // The SDK's own complaints (an unreachable collector, a bad sampler) into the service's log.
    diag.setLogger(
      {
        error: (message, ...args) => log.warn({ otel: [message, ...args].map(String).join(" ") }, "tracing"),
        warn: (message, ...args) => log.warn({ otel: [message, ...args].map(String).join(" ") }, "tracing"),
        info: () => undefined,
        debug: () => undefined,
        verbose: () => undefined,
      },
      DiagLogLevel.WARN,
    );
    const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() || env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim();
    if (protocol && protocol !== "http/json") {
      log.warn({ protocol }, "tracing: chjob sends OTLP over HTTP as JSON (http/json) whatever OTEL_EXPORTER_OTLP_PROTOCOL says; point the endpoint at the collector's OTLP/HTTP port (4318)");
    }
    const resource = defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: "chjob", [ATTR_SERVICE_VERSION]: opts.version, [ATTR_SERVICE_INSTANCE_ID]: opts.replicaId }))
      // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win.
      .merge(detectResources({ detectors: [envDetector] }));
    this.provider = new NodeTracerProvider({
      resource,
      // The exporter reads the endpoint, headers, timeout and compression; the processor OTEL_BSP_*.
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
    });
    this.provider.register({ propagator: this.propagator });
    this.tracer = this.provider.getTracer("chjob", opts.version);
  }

  /** grpc-js server interceptor: a SERVER span per RPC, the caller's traceparent continued; the handler runs in its context. */
  readonly interceptor: ServerInterceptor = (method, call) => {
    const { service, method: name } = rpcName(method.path);
    let span: Span | undefined;
    let spanContext: Context | undefined;
    const within = <T>(fn: () => T): T => (spanContext ? context.with(spanContext, fn) : fn());
    const end = (code: number, details?: string) => {
      if (!span) return;
      const codeName = grpcStatus[code] ?? String(code);
      span.setAttribute(ATTR_RPC_STATUS_CODE, codeName);
      if (SERVER_ERRORS.has(code)) {
        span.setAttribute(ATTR_ERROR_TYPE, codeName);
        span.setStatus({ code: SpanStatusCode.ERROR, message: details });
      }
      span.end();
      span = undefined;
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const parent = this.propagator.extract(ROOT_CONTEXT, metadata, metadataGetter);
            // Health probes come every few seconds: traced only as part of a caller's trace.
            if (service !== "grpc.health.v1.Health" || trace.getSpanContext(parent)) {
              span = this.tracer.startSpan(
                `${service}/${name}`,
                { kind: SpanKind.SERVER, attributes: { [ATTR_RPC_SYSTEM_NAME]: "grpc", [ATTR_RPC_METHOD]: `${service}/${name}` } },
                parent,
              );
              spanContext = trace.setSpan(parent, span);
            }
            within(() => pass(metadata));
          },
          onReceiveMessage: (message, pass) => within(() => pass(message)),
          onReceiveHalfClose: (pass) => within(pass),
          onCancel: () => end(abandonedStatus(call)),
        }),
      sendMessage: (message, pass) => {
        // JobService answers carry the job: its id goes on the call's span (an attribute, never a metric label).
        const id = (message as { job?: { id?: unknown } } | undefined)?.job?.id;
        if (span && typeof id === "string" && id !== "") span.setAttribute("chjob.job.id", id);
        pass(message);
      },
      sendStatus: (status, pass) => {
        end(status.code, status.details);
        pass(status);
      },
    });
  };

  /** Job phase spans, and the traceparent stored with each new job. */
  readonly runner: RunnerTelemetry = {
    creating: () => {
      const span = trace.getActiveSpan();
      if (!span || !isSpanContextValid(span.spanContext())) return undefined;
      const carrier: Record<string, string> = {};
      this.propagator.inject(context.active(), carrier, { set: (c, k, v) => (c[k] = v) });
      return carrier.traceparent;
    },
    claimed: (job) => this.run(job),
  };

  /** Queue spans of jobs that ended before any replica claimed them (cancelled, superseded), by the replica that ended them. */
  observeStore(store: Pick<JobStore, "committed">): void {
    this.subscriptions.push(
      store.committed.subscribe((s) => {
        if (isTerminal(s.status) && s.attempt === 0 && s.traceParent) this.phaseSpan("queue", s, s.createdAt).end(s.updatedAt);
      }),
    );
  }

  private parentOf(job: JobSnapshot): Context {
    return this.propagator.extract(ROOT_CONTEXT, { traceparent: job.traceParent }, { keys: (c) => Object.keys(c), get: (c, k) => c[k as "traceparent"] });
  }

  private phaseSpan(phase: JobPhase, job: JobSnapshot, startTime?: number): Span {
    const span = this.tracer.startSpan(
      `chjob.job.${phase}`,
      {
        kind: phase === "export" ? SpanKind.CLIENT : SpanKind.INTERNAL,
        startTime,
        attributes: { "chjob.job.id": job.id, "chjob.job.attempt": job.attempt, "chjob.replica": this.opts.replicaId },
      },
      this.parentOf(job),
    );
    if (isTerminal(job.status)) finish(span, job);
    return span;
  }

  private run(job: JobSnapshot): JobRunTelemetry {
    // Jobs made while tracing was off have no trace to continue.
    if (!job.traceParent) return { phase: () => undefined, headers: () => ({}), ended: () => undefined };
    // A fresh claim: the queue ends now (both times by the store's clock).
    if (job.attempt === 1 && job.status === JobStatus.RUNNING) this.phaseSpan("queue", job, job.createdAt).end(job.updatedAt);
    let current: Span | undefined;
    return {
      phase: (phase) => {
        current?.end();
        current = this.phaseSpan(phase, job);
      },
      headers: () => {
        if (!current) return {};
        const carrier: Record<string, string> = {};
        this.propagator.inject(trace.setSpan(ROOT_CONTEXT, current), carrier, { set: (c, k, v) => (c[k] = v) });
        return carrier;
      },
      ended: (final) => {
        if (!current) return;
        if (isTerminal(final.status)) finish(current, final);
        else current.setAttribute("chjob.job.status", `${JobStatus[final.status]} (stopped here: handed over or lease lost)`);
        current.end();
        current = undefined;
      },
    };
  }

  /** Sends what is left and stops. */
  async close(): Promise<void> {
    this.subscriptions.forEach((s) => s.unsubscribe());
    await this.provider.shutdown().catch((err: unknown) => this.opts.log.warn({ err: String(err) }, "tracing: could not send the last spans"));
    trace.disable();
    context.disable();
    propagation.disable();
    diag.disable();
  }
}

/** A phase span of a job that ended: its final status, and an error status when it failed. */
function finish(span: Span, job: JobSnapshot): void {
  span.setAttribute("chjob.job.status", JobStatus[job.status]);
  if (job.status === JobStatus.FAILED) span.setStatus({ code: SpanStatusCode.ERROR, message: job.error });
}
