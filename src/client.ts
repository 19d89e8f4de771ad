// A typed JobService client over grpc-js, built from the same descriptors as
// the server: promise-returning unary calls and WatchJob as an async iterable.
import * as grpc from "@grpc/grpc-js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  CancelJobRequestSchema,
  CreateJobRequestSchema,
  GetJobRequestSchema,
  JobService,
  ListJobsRequestSchema,
  WatchJobRequestSchema,
  type Job,
  type ListJobsResponse,
} from "../gen/chjob/v1/job_service_pb.js";
import { HealthCheckRequestSchema, Health, type HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { serviceDefinition } from "./grpc/bridge.js";

export interface ClientOptions {
  token?: string;
  /** TLS: true for the system's CAs, or a PEM CA certificate. */
  tls?: boolean | Buffer;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

type Unary = (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: unknown) => void) => grpc.ClientUnaryCall;
type Streaming = (req: unknown, md: grpc.Metadata, opts?: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;

const JobServiceClient = grpc.makeGenericClientConstructor(serviceDefinition(JobService), "JobService");
const HealthClient = grpc.makeGenericClientConstructor(serviceDefinition(Health), "Health");

export class JobClient {
  private readonly jobs: grpc.Client & Record<string, Unary | Streaming>;
  private readonly health: grpc.Client & Record<string, Unary>;
  private readonly token: string | undefined;

  constructor(
    readonly address: string,
    opts: ClientOptions = {},
  ) {
    const credentials = opts.tls ? grpc.credentials.createSsl(opts.tls === true ? null : opts.tls) : grpc.credentials.createInsecure();
    this.jobs = new JobServiceClient(address, credentials, opts.channelOptions) as never;
    this.health = new HealthClient(address, credentials, opts.channelOptions) as never;
    this.token = opts.token;
  }

  createJob(req: MessageInitShape<typeof CreateJobRequestSchema>, deadlineMs?: number): Promise<Job> {
    return this.unary<{ job?: Job }>("createJob", create(CreateJobRequestSchema, req), deadlineMs).then(jobOf);
  }

  getJob(jobId: string, deadlineMs?: number): Promise<Job> {
    return this.unary<{ job?: Job }>("getJob", create(GetJobRequestSchema, { jobId }), deadlineMs).then(jobOf);
  }

  cancelJob(jobId: string, deadlineMs?: number): Promise<Job> {
    return this.unary<{ job?: Job }>("cancelJob", create(CancelJobRequestSchema, { jobId }), deadlineMs).then(jobOf);
  }

  listJobs(req: MessageInitShape<typeof ListJobsRequestSchema>, deadlineMs?: number): Promise<ListJobsResponse> {
    return this.unary<ListJobsResponse>("listJobs", create(ListJobsRequestSchema, req), deadlineMs);
  }

  /** The job's states until a terminal one; `call` lets the caller cancel the stream. */
  watchJob(jobId: string): { states: AsyncIterable<Job>; call: grpc.ClientReadableStream<unknown> } {
    const call = (this.jobs.watchJob as Streaming).call(this.jobs, create(WatchJobRequestSchema, { jobId }), this.metadata());
    async function* states(): AsyncIterable<Job> {
      for await (const res of call as AsyncIterable<{ job?: Job }>) yield jobOf(res);
    }
    return { states: states(), call };
  }

  async healthCheck(service = "", deadlineMs?: number): Promise<HealthCheckResponse_ServingStatus> {
    const res = await this.unaryOn<{ status: HealthCheckResponse_ServingStatus }>(this.health, "check", create(HealthCheckRequestSchema, { service }), deadlineMs);
    return res.status;
  }

  /** Resolves once the channel is connected; rejects after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => this.jobs.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
  }

  close(): void {
    this.jobs.close();
    this.health.close();
  }

  private unary<T>(method: string, req: unknown, deadlineMs?: number): Promise<T> {
    return this.unaryOn<T>(this.jobs, method, req, deadlineMs);
  }

  private unaryOn<T>(client: grpc.Client & Record<string, unknown>, method: string, req: unknown, deadlineMs?: number): Promise<T> {
    const opts: grpc.CallOptions = deadlineMs ? { deadline: Date.now() + deadlineMs } : {};
    return new Promise((resolve, reject) =>
      (client[method] as Unary).call(client, req, this.metadata(), opts, (err, res) => (err ? reject(err) : resolve(res as T))),
    );
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.token !== undefined) md.set("authorization", `Bearer ${this.token}`);
    return md;
  }
}

function jobOf(res: { job?: Job }): Job {
  if (!res.job) throw new Error("the response carries no job");
  return res.job;
}
