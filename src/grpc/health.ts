// grpc.health.v1.Health: Check and Watch over a small table of serving states.
import { create } from "@bufbuild/protobuf";
import { status as grpcStatus } from "@grpc/grpc-js";
import { BehaviorSubject } from "rxjs";
import { HealthCheckResponse_ServingStatus as Serving, HealthCheckResponseSchema, type Health } from "../../gen/grpc/health/v1/health_pb.js";
import type { ServiceHandlers } from "./bridge.js";

export { Serving };

export class HealthState {
  private readonly states = new Map<string, BehaviorSubject<Serving>>();

  constructor(services: string[]) {
    for (const s of services) this.states.set(s, new BehaviorSubject<Serving>(Serving.NOT_SERVING));
  }

  /** Sets every service's status. */
  setAll(status: Serving): void {
    for (const s of this.states.values()) if (s.value !== status) s.next(status);
  }

  get(service: string): Serving | undefined {
    return this.states.get(service)?.value;
  }

  handlers(): ServiceHandlers<typeof Health> {
    return {
      check: (call, callback) => {
        const status = this.get(call.request.service);
        if (status === undefined) {
          callback({ code: grpcStatus.NOT_FOUND, details: `unknown service "${call.request.service}"` });
          return;
        }
        callback(null, create(HealthCheckResponseSchema, { status }));
      },
      watch: (call) => {
        const subject = this.states.get(call.request.service);
        if (!subject) {
          call.write(create(HealthCheckResponseSchema, { status: Serving.SERVICE_UNKNOWN }));
          return;
        }
        const sub = subject.subscribe({
          next: (status) => call.write(create(HealthCheckResponseSchema, { status })),
          complete: () => call.end(), // at shutdown
        });
        call.on("cancelled", () => sub.unsubscribe());
        call.on("close", () => sub.unsubscribe());
      },
    };
  }

  /** Ends Watch streams (at shutdown). */
  close(): void {
    for (const s of this.states.values()) s.complete();
  }
}
