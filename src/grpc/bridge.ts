// The one bridge between protobuf-es descriptors and grpc-js: a grpc-js service
// definition built from a generated GenService, typed handlers in, and the
// binary FileDescriptorProtos that server reflection serves.
import type * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

type Methods<S extends DescService> = S["method"];

/** grpc-js handler for each method of a GenService, typed by its messages. */
export type ServiceHandlers<S extends DescService> = {
  [K in keyof Methods<S>]: Methods<S>[K] extends { methodKind: "unary"; input: infer I extends DescMessage; output: infer O extends DescMessage }
    ? grpc.handleUnaryCall<MessageShape<I>, MessageShape<O>>
    : Methods<S>[K] extends { methodKind: "server_streaming"; input: infer I extends DescMessage; output: infer O extends DescMessage }
      ? grpc.handleServerStreamingCall<MessageShape<I>, MessageShape<O>>
      : never;
};

/** A grpc-js ServiceDefinition whose (de)serializers are protobuf-es toBinary/fromBinary. */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>> = {};
  for (const method of service.methods) {
    if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
      throw new Error(`${service.typeName}.${method.name}: ${method.methodKind} methods are not bridged`);
    }
    const { input, output } = method;
    const serialize = (value: MessageShape<DescMessage>) => Buffer.from(toBinary(output, value));
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      requestSerialize: (value: MessageShape<DescMessage>) => Buffer.from(toBinary(input, value)),
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
function sharedBytes(serialize: (value: MessageShape<DescMessage>) => Buffer): (value: MessageShape<DescMessage>) => Buffer {
  const bytes = new WeakMap<object, Buffer>();
  return (value) => {
    let b = bytes.get(value);
    if (!b) bytes.set(value, (b = serialize(value)));
    return b;
  };
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
