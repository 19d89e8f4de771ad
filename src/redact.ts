// Secrets never leave the process in a log line, a job error or a listing:
// every text that might echo SQL or a request passes through a redactor.
import { quoteString } from "./clickhouse/sql-text.js";

export type Redactor = (text: string) => string;

export const HIDDEN = "[HIDDEN]";

/** Replaces each secret, also as it appears inside an SQL literal or a URL, and each of those inside a JSON string, with [HIDDEN]. */
export function createRedactor(secrets: ReadonlyArray<string | undefined>): Redactor {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of [secret, quoteString(secret).slice(1, -1), encodeURIComponent(secret)]) {
      forms.add(form);
      // As a log line (JSON) carries it.
      forms.add(JSON.stringify(form).slice(1, -1));
    }
  }
  // Longest first, so a secret that contains another is replaced whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  if (ordered.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const form of ordered) out = out.split(form).join(HIDDEN);
    return out;
  };
}
