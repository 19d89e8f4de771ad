// The one bridge between protobuf-es and grpc-js. Services are written as plain
// typed functions (ServiceImpl): a unary method returns a Promise of its
// response, a server-streaming method an AsyncIterable of its responses, and
// either throws a domain error (src/errors.ts) when it refuses. This file adapts
// them to grpc-js once: (de)serializers from the generated descriptors,
// thrown errors to statuses (errors.ts), stream backpressure, cancellation. It
// also gives server reflection the binary FileDescriptorProtos.
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescFile, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { Logger } from "../log.js";
import { codeOf, toStatus } from "./errors.js";

/** What a handler knows about its call besides the request. */
export interface CallContext {
  /** The full method path, e.g. `/chjob.v1.JobService/CreateJob`. */
  readonly method: string;
  readonly metadata: grpc.Metadata;
  /**
   * Aborted when the call ends before the handler is done: the client cancelled or went
   * away, or the deadline passed. A streaming handler stops producing then.
   */
  readonly signal: AbortSignal;
}

type Methods<S extends DescService> = S["method"];

/** The handler of one method, typed by its messages. */
export type MethodImpl<M> = M extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? (request: MessageShape<I>, context: CallContext) => Promise<MessageShape<O>>
  : M extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? (request: MessageShape<I>, context: CallContext) => AsyncIterable<MessageShape<O>>
    : never;

/** A handler for each method of a generated GenService. */
export type ServiceImpl<S extends DescService> = { [K in keyof Methods<S>]: MethodImpl<Methods<S>[K]> };

type AnyMessage = MessageShape<DescMessage>;
type UnaryFn = (request: AnyMessage, context: CallContext) => Promise<AnyMessage>;
type StreamingFn = (request: AnyMessage, context: CallContext) => AsyncIterable<AnyMessage>;

/** A grpc-js ServiceDefinition whose (de)serializers are protobuf-es toBinary/fromBinary. */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<AnyMessage, AnyMessage>> = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
      throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not bridged`);
    }
    const { input, output } = method;
    const serialize = (value: AnyMessage) => Buffer.from(toBinary(output, value));
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      requestSerialize: (value: AnyMessage) => Buffer.from(toBinary(input, value)),
      requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
      responseSerialize: method.methodKind === "server_streaming" ? sharedBytes(serialize) : serialize,
      responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
      originalName: method.name,
    };
  }
  return definition;
}

/**
 * A streamed message written to many streams (one job state to all its
 * watchers) is serialized once: the bytes are kept as long as the message is.
 * grpc-js copies them into each frame, so sharing them is safe.
 */
function sharedBytes(serialize: (value: AnyMessage) => Buffer): (value: AnyMessage) => Buffer {
  const bytes = new WeakMap<object, Buffer>();
  return (value) => {
    let b = bytes.get(value);
    if (!b) bytes.set(value, (b = serialize(value)));
    return b;
  };
}

/** Adds `service` to `server`, its methods answered by `impl`. */
export function addService<S extends DescService>(server: grpc.Server, service: S, impl: ServiceImpl<S>, log: Logger): void {
  server.addService(serviceDefinition(service), grpcHandlers(service, impl, log));
}

/** grpc-js handlers for the typed ones: the only place that speaks grpc-js's call objects. */
export function grpcHandlers<S extends DescService>(service: S, impl: ServiceImpl<S>, log: Logger): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  const fns = impl as unknown as Record<string, UnaryFn | StreamingFn>;
  for (const method of service.methods) {
    const fn = fns[method.localName];
    if (!fn) throw new Error(`${service.typeName}.${method.name} has no handler`);
    const path = `/${service.typeName}/${method.name}`;
    /** The status for a thrown value; an unforeseen one is logged here, with its stack, and hidden from the caller. */
    const fail = (err: unknown) => {
      if (codeOf(err) === undefined) log.error({ method: path, err: String((err as Error)?.stack ?? err) }, "unexpected error");
      return toStatus(err);
    };
    handlers[method.localName] =
      method.methodKind === "unary"
        ? (call: grpc.ServerUnaryCall<AnyMessage, AnyMessage>, callback: grpc.sendUnaryData<AnyMessage>) => {
            const { context, release } = callContext(path, call);
            invoke(fn as UnaryFn, call.request, context).then(
              (response) => {
                release();
                callback(null, response);
              },
              (err: unknown) => {
                release();
                callback(fail(err));
              },
            );
          }
        : (call: grpc.ServerWritableStream<AnyMessage, AnyMessage>) => {
            const { context, release } = callContext(path, call);
            writeAll(call, fn as StreamingFn, context).then(
              () => {
                release();
                if (!context.signal.aborted) call.end();
              },
              (err: unknown) => {
                release();
                // grpc-js ends a server stream with the status of an 'error' event.
                if (!context.signal.aborted) call.emit("error", fail(err));
              },
            );
          };
  }
  return handlers;
}

/** A handler's result as a promise, a synchronous throw included. */
async function invoke<T>(fn: (request: AnyMessage, context: CallContext) => Promise<T>, request: AnyMessage, context: CallContext): Promise<T> {
  return fn(request, context);
}

/**
 * Why a call's signal aborts: one shared value. Without one, each abort builds a DOMException,
 * stack trace and all, which costs a replica ending thousands of watches at once (one job's DONE)
 * more than writing them.
 */
const CALL_ENDED = Object.freeze(new Error("the call ended before its handler was done"));

/**
 * The handler's context; `release` (once the handler is done) stops watching the call, so a
 * call that ends normally (its stream closes after its status is sent) aborts nothing.
 */
function callContext(
  method: string,
  call: grpc.ServerUnaryCall<AnyMessage, AnyMessage> | grpc.ServerWritableStream<AnyMessage, AnyMessage>,
): { context: CallContext; release: () => void } {
  const ended = new AbortController();
  const abort = () => ended.abort(CALL_ENDED);
  call.once("cancelled", abort);
  call.once("close", abort);
  const release = () => {
    call.off("cancelled", abort);
    call.off("close", abort);
  };
  return { context: { method, metadata: call.metadata, signal: ended.signal }, release };
}

/**
 * Writes a streaming handler's messages as the client takes them: the next one is
 * pulled only while grpc-js's buffer has room (else after 'drain'), so a slow
 * client holds the handler at its iterator, where it may merge what it would
 * have sent. Stops pulling when the call ends early.
 */
async function writeAll(call: grpc.ServerWritableStream<AnyMessage, AnyMessage>, fn: StreamingFn, context: CallContext): Promise<void> {
  const messages = fn(call.request, context)[Symbol.asyncIterator]();
  let done = false;
  try {
    while (!context.signal.aborted) {
      const next = await messages.next();
      if (next.done) {
        done = true;
        return;
      }
      if (context.signal.aborted) return;
      if (!call.write(next.value)) await drained(call, context.signal);
    }
  } finally {
    // As `for await` does on leaving early: the handler releases what it holds.
    if (!done) void messages.return?.()?.catch(() => undefined);
  }
}

function drained(call: grpc.ServerWritableStream<AnyMessage, AnyMessage>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    call.on("drain", done);
    signal.addEventListener("abort", done);
  });
}

/** The file of each service and its transitive imports, as binary FileDescriptorProtos. */
export function fileDescriptorProtos(services: DescService[]): Buffer[] {
  const seen = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    if (seen.has(file.name)) return;
    seen.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  return [...seen.values()].map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
}

/**
 * The package-definition shape that @grpc/reflection reads: one entry per service,
 * each carrying the descriptors. No second proto loader is involved.
 */
export function reflectionPackage(services: DescService[]): Record<string, { fileDescriptorProtos: Buffer[] }> {
  const protos = fileDescriptorProtos(services);
  return Object.fromEntries(services.map((s) => [s.typeName, { fileDescriptorProtos: protos }]));
}
