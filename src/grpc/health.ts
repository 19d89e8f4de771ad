// grpc.health.v1.Health: Check and Watch over a small table of serving states,
// as typed handlers like JobService's (bridge.ts).
import { create } from "@bufbuild/protobuf";
import { BehaviorSubject, map } from "rxjs";
import { HealthCheckResponse_ServingStatus as Serving, HealthCheckResponseSchema, type Health } from "../../gen/grpc/health/v1/health_pb.js";
import { NotFoundError } from "../errors.js";
import type { ServiceImpl } from "./bridge.js";
import { iterate } from "./watch.js";

export { Serving };

export class HealthState {
  private readonly states = new Map<string, BehaviorSubject<Serving>>();
  /** What Watch streams of a service the table lacks see: SERVICE_UNKNOWN, open until shutdown. */
  private readonly unknown = new BehaviorSubject<Serving>(Serving.SERVICE_UNKNOWN);

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

  service(): ServiceImpl<typeof Health> {
    return {
      check: async (req) => {
        const status = this.get(req.service);
        if (status === undefined) throw new NotFoundError(`unknown service "${req.service}"`);
        return create(HealthCheckResponseSchema, { status });
      },
      // A slow watcher gets the newest status (the health protocol allows skipping).
      watch: (req, { signal }) =>
        iterate((this.states.get(req.service) ?? this.unknown).pipe(map((status) => create(HealthCheckResponseSchema, { status }))), signal, {
          replaces: () => true,
        }),
    };
  }

  /** Ends Watch streams (at shutdown). */
  close(): void {
    for (const s of this.states.values()) s.complete();
    this.unknown.complete();
  }
}
