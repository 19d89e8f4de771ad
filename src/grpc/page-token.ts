// ListJobs page tokens: opaque to clients, signed so that one cannot be forged
// or carried over to a listing with another filter. The key lives in the job
// store, so a token works after a restart and on every replica.
import { createHmac, timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "../errors.js";

export class PageTokens {
  constructor(private readonly key: Buffer) {}

  encode(reportId: string, position: string): string {
    const payload = Buffer.from(JSON.stringify({ r: reportId, p: position })).toString("base64url");
    return `${payload}.${this.sign(payload)}`;
  }

  /** The registry position the token carries; throws INVALID_ARGUMENT for a forged, stale or foreign token. */
  decode(token: string, reportId: string): string {
    const [payload, sig, extra] = token.split(".");
    const expected = payload ? this.sign(payload) : "";
    if (!payload || !sig || extra !== undefined || sig.length !== expected.length || !timingSafeEqual(Buffer.from(sig), Buffer.from(expected))) {
      throw new InvalidArgumentError("page_token", "is not a token this service issued; list again without page_token");
    }
    const { r, p } = JSON.parse(Buffer.from(payload, "base64url").toString()) as { r: string; p: string };
    if (r !== reportId) {
      throw new InvalidArgumentError("page_token", "belongs to a listing with another report_id; send the same report_id as the first page, or no page_token");
    }
    return p;
  }

  private sign(payload: string): string {
    return createHmac("sha256", this.key).update(payload).digest("base64url");
  }
}
