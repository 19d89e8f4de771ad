// The job store's schema, as numbered migrations applied at start. Replicas
// starting together take turns through a session-level advisory lock; a
// database migrated by newer code than this is refused.
import { quoteIdent, quoteLiteral, type SqlClient, type SqlRunner } from "./sql.js";

interface Migration {
  version: number;
  name: string;
  /** Statements, one per entry (drivers take one statement per query); `s` is the quoted schema, `name` as given. */
  statements: (s: string, name: string) => string[];
}

const ACTIVE = "(1, 2, 4)"; // PENDING, RUNNING, READING_RESULTS
const FINISHED = "(5, 6, 7)"; // DONE, FAILED, CANCELLED

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "jobs",
    statements: (s) => [
      `CREATE TABLE ${s}.jobs (
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        id uuid PRIMARY KEY,
        report_id text NOT NULL,
        query_id text NOT NULL,
        query_text text NOT NULL,
        status smallint NOT NULL,
        error text NOT NULL DEFAULT '',
        result_uri text NOT NULL DEFAULT '',
        result_size bigint NOT NULL DEFAULT 0,
        export_uri text NOT NULL,
        total_rows bigint,
        bytes_processed bigint,
        progress jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        version integer NOT NULL DEFAULT 1,
        attempt integer NOT NULL DEFAULT 0,
        replica text NOT NULL DEFAULT '',
        owner text,
        lease_until timestamptz,
        request_id text,
        request_hash text
      )`,
      // One active job per (report_id, query_id): they share one export path.
      `CREATE UNIQUE INDEX jobs_active_key ON ${s}.jobs (report_id, query_id) WHERE status IN ${ACTIVE}`,
      `CREATE UNIQUE INDEX jobs_request_id ON ${s}.jobs (request_id) WHERE request_id IS NOT NULL`,
      `CREATE INDEX jobs_pending ON ${s}.jobs (seq) WHERE status = 1`,
      `CREATE INDEX jobs_owned ON ${s}.jobs (owner, lease_until) WHERE owner IS NOT NULL`,
      `CREATE INDEX jobs_by_report ON ${s}.jobs (report_id, seq)`,
      `CREATE INDEX jobs_finished ON ${s}.jobs (updated_at) WHERE status IN ${FINISHED}`,
      `CREATE TABLE ${s}.settings (name text PRIMARY KEY, value text NOT NULL)`,
    ],
  },
  {
    version: 2,
    name: "replicas: state history, notifications, replica heartbeats",
    statements: (s) => [
      // Each status change (and each new attempt), so that a watcher on another replica that
      // hears of a later version can fill in the statuses between: none is ever skipped.
      `CREATE TABLE ${s}.job_states (
        job_id uuid NOT NULL REFERENCES ${s}.jobs (id) ON DELETE CASCADE,
        version integer NOT NULL,
        state jsonb NOT NULL,
        PRIMARY KEY (job_id, version)
      )`,
      `ALTER TABLE ${s}.jobs ADD COLUMN notified_at timestamptz`,
      // NOTIFY on the schema's channel: "<job id>:<version>" for a new state (a progress-only
      // change at most about once a second per job: each NOTIFY takes a global lock at commit),
      // and "q" when the queue may have work for an idle replica (a new job, a released export
      // path, an ended lease).
      `CREATE FUNCTION ${s}.jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP = 'INSERT' THEN
          PERFORM pg_notify(TG_TABLE_SCHEMA, NEW.id::text || ':' || NEW.version);
          PERFORM pg_notify(TG_TABLE_SCHEMA, 'q');
          NEW.notified_at := clock_timestamp();
          RETURN NEW;
        END IF;
        IF NEW.version <> OLD.version AND (NEW.status <> OLD.status OR NEW.attempt <> OLD.attempt
            OR OLD.notified_at IS NULL OR OLD.notified_at < clock_timestamp() - interval '900 milliseconds') THEN
          PERFORM pg_notify(TG_TABLE_SCHEMA, NEW.id::text || ':' || NEW.version);
          NEW.notified_at := clock_timestamp();
        END IF;
        IF (OLD.owner IS NOT NULL AND NEW.owner IS NULL)
            OR (NEW.owner IS NOT NULL AND NEW.lease_until <= clock_timestamp() AND OLD.lease_until > clock_timestamp()) THEN
          PERFORM pg_notify(TG_TABLE_SCHEMA, 'q');
        END IF;
        RETURN NEW;
      END $fn$`,
      `CREATE TRIGGER jobs_notify BEFORE INSERT OR UPDATE ON ${s}.jobs FOR EACH ROW EXECUTE FUNCTION ${s}.jobs_notify()`,
      `CREATE FUNCTION ${s}.jobs_history() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP = 'INSERT' OR NEW.status <> OLD.status OR NEW.attempt <> OLD.attempt THEN
          EXECUTE format('INSERT INTO %I.job_states (job_id, version, state) VALUES ($1, $2, $3)', TG_TABLE_SCHEMA)
            USING NEW.id, NEW.version, to_jsonb(NEW) - 'query_text' - 'request_hash';
        END IF;
        RETURN NULL;
      END $fn$`,
      `CREATE TRIGGER jobs_history AFTER INSERT OR UPDATE ON ${s}.jobs FOR EACH ROW EXECUTE FUNCTION ${s}.jobs_history()`,
      // Live replicas (heartbeats), so that one stopping knows whether another can take its jobs.
      `CREATE TABLE ${s}.replicas (id text PRIMARY KEY, seen_at timestamptz NOT NULL, draining boolean NOT NULL DEFAULT false)`,
    ],
  },
  {
    version: 3,
    name: "results: format, compression, per-job limits, reuse",
    statements: (s) => [
      `ALTER TABLE ${s}.jobs
        ADD COLUMN format smallint NOT NULL DEFAULT 1,
        ADD COLUMN compression smallint NOT NULL DEFAULT 1,
        ADD COLUMN content_type text NOT NULL DEFAULT 'text/csv; charset=utf-8; header=present',
        ADD COLUMN limits jsonb NOT NULL DEFAULT '{}',
        ADD COLUMN reuse_max_age_ms float8,
        ADD COLUMN query_hash text,
        ADD COLUMN target text,
        ADD COLUMN reused_from text NOT NULL DEFAULT ''`,
      // Result reuse looks a result up with one query on this index, with replicas too.
      `CREATE INDEX jobs_reusable ON ${s}.jobs (query_hash, format, compression, target, updated_at) WHERE status = 5`,
    ],
  },
  {
    version: 4,
    name: "tracing: the CreateJob call's trace context",
    statements: (s) => [
      // W3C traceparent of the CreateJob span: the replica that claims the job continues the trace.
      `ALTER TABLE ${s}.jobs ADD COLUMN trace_parent text`,
    ],
  },
  {
    version: 5,
    name: "one round trip per rule: create and claim as functions; static history and notifications carrying the state",
    statements: (s, name) => [
      // CreateJob's rule in one call (src/store/sql-job-store.ts, create): the request_id lookup,
      // the queue bound and the supersede, under the same advisory locks as before (replicas of
      // the previous version, mid-upgrade, still take turns with these). Returns the request_id's
      // earlier job; or the superseded jobs, the new one, and its RUNNING state when claimed here;
      // or nothing when the queue is full.
      `CREATE FUNCTION ${s}.create_job(p_id uuid, p_report text, p_query text, p_text text, p_export text,
          p_request text, p_request_hash text, p_format smallint, p_compression smallint, p_content_type text,
          p_limits jsonb, p_reuse float8, p_query_hash text, p_target text, p_trace text, p_queue_limit int,
          p_claim_for text, p_lease_ms float8)
        RETURNS SETOF ${s}.jobs LANGUAGE plpgsql AS $fn$
      DECLARE
        waiting int;
      BEGIN
        IF p_request IS NOT NULL THEN
          PERFORM pg_advisory_xact_lock(hashtextextended('request ' || p_request, 0));
          RETURN QUERY SELECT * FROM ${s}.jobs WHERE request_id = p_request;
          IF FOUND THEN RETURN; END IF;
        END IF;
        PERFORM pg_advisory_xact_lock(hashtextextended(${quoteLiteral(`queue ${name}`)}, 0));
        SELECT count(*) INTO waiting FROM ${s}.jobs WHERE status = 1;
        IF waiting >= p_queue_limit THEN RETURN; END IF;
        PERFORM pg_advisory_xact_lock(hashtextextended('key ' || p_report || '/' || p_query, 0));
        RETURN QUERY UPDATE ${s}.jobs SET status = 7, error = 'superseded by job ' || p_id || ' for the same report_id and query_id',
            version = version + 1, updated_at = clock_timestamp(), owner = CASE WHEN status = 1 THEN NULL ELSE owner END
          WHERE report_id = p_report AND query_id = p_query AND status IN ${ACTIVE} RETURNING *;
        RETURN QUERY INSERT INTO ${s}.jobs (id, report_id, query_id, query_text, status, export_uri, request_id, request_hash,
            format, compression, content_type, limits, reuse_max_age_ms, query_hash, target, trace_parent)
          VALUES (p_id, p_report, p_query, p_text, 1, p_export, p_request, p_request_hash,
            p_format, p_compression, p_content_type, p_limits, p_reuse, p_query_hash, p_target, p_trace) RETURNING *;
        -- The creating replica has a free slot: it takes the job in this transaction when that keeps
        -- the queue's order (no other job waits) and the export path is free (no job of the key holds it).
        IF p_claim_for IS NOT NULL AND waiting = 0
            AND NOT EXISTS (SELECT 1 FROM ${s}.jobs o WHERE o.report_id = p_report AND o.query_id = p_query AND o.owner IS NOT NULL) THEN
          RETURN QUERY UPDATE ${s}.jobs SET status = 2, attempt = 1, owner = p_claim_for, replica = p_claim_for,
              lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond', version = version + 1, updated_at = clock_timestamp()
            WHERE id = p_id RETURNING *;
        END IF;
      END $fn$`,
      // A replica's claim in one call (sql-job-store.ts, claim): first jobs whose replica stopped
      // renewing its lease (run again, or FAILED after p_max_attempts: returned too, terminal),
      // then the oldest PENDING jobs whose export path no other job of their key holds.
      `CREATE FUNCTION ${s}.claim_jobs(p_replica text, p_max int, p_lease_ms float8, p_max_attempts int)
        RETURNS SETOF ${s}.jobs LANGUAGE plpgsql AS $fn$
      DECLARE
        orphan record;
        taken int := 0;
      BEGIN
        FOR orphan IN SELECT id, status, attempt, replica FROM ${s}.jobs
            WHERE owner IS NOT NULL AND lease_until < clock_timestamp() ORDER BY seq LIMIT p_max FOR UPDATE SKIP LOCKED LOOP
          IF orphan.status IN ${FINISHED} THEN
            -- Ended (cancelled) while its replica died: only the export path is held.
            UPDATE ${s}.jobs SET owner = NULL, lease_until = NULL WHERE id = orphan.id;
          ELSIF orphan.attempt >= p_max_attempts THEN
            RETURN QUERY UPDATE ${s}.jobs SET status = 6, owner = NULL, lease_until = NULL, version = version + 1, updated_at = clock_timestamp(),
                error = 'gave up after ' || orphan.attempt || ' attempts: the replica running it (' || orphan.replica || ') stopped before it finished'
              WHERE id = orphan.id RETURNING *;
          ELSE
            -- Run again; a job that had finished its export only needs the copy again: it stays READING_RESULTS.
            RETURN QUERY UPDATE ${s}.jobs SET attempt = attempt + 1, owner = p_replica, replica = p_replica,
                lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond', version = version + 1, updated_at = clock_timestamp(),
                progress = CASE WHEN status = 2 THEN '{}'::jsonb ELSE progress END
              WHERE id = orphan.id RETURNING *;
            taken := taken + 1;
          END IF;
        END LOOP;
        IF p_max > taken THEN
          RETURN QUERY UPDATE ${s}.jobs SET status = 2, attempt = attempt + 1, owner = p_replica, replica = p_replica,
              lease_until = clock_timestamp() + p_lease_ms * interval '1 millisecond', version = version + 1, updated_at = clock_timestamp()
            WHERE id IN (
              SELECT j.id FROM ${s}.jobs j
              WHERE j.status = 1
                AND NOT EXISTS (SELECT 1 FROM ${s}.jobs o WHERE o.report_id = j.report_id AND o.query_id = j.query_id AND o.owner IS NOT NULL)
              ORDER BY j.seq LIMIT p_max - taken FOR UPDATE SKIP LOCKED)
            RETURNING *;
        END IF;
      END $fn$`,
      // The BEFORE trigger only decides whether this write is news for other replicas (a status
      // change, a new attempt, or progress at most about once a second per job: each NOTIFY takes
      // a global lock at commit) and stamps notified_at; the AFTER trigger below sends it.
      `CREATE OR REPLACE FUNCTION ${s}.jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP = 'INSERT' OR (NEW.version <> OLD.version AND (NEW.status <> OLD.status OR NEW.attempt <> OLD.attempt
            OR OLD.notified_at IS NULL OR OLD.notified_at < clock_timestamp() - interval '900 milliseconds')) THEN
          NEW.notified_at := clock_timestamp();
        END IF;
        RETURN NEW;
      END $fn$`,
      // One AFTER trigger: the status history (static SQL: its plan is kept) and the notifications.
      // "<id>:<version>:<sender>:<state>" carries the new state (the row as JSON, less the query
      // text), so a replica following the job needs no read; a state too long for NOTIFY's 8000
      // bytes (a long error) goes as "<id>:<version>:<sender>" and is read. "q:<sender>": the queue
      // may have work (a new job, a released export path, an ended lease). <sender> is the writing
      // connection's application_name (src/store/postgres.ts), so a replica skips its own news.
      // A session with chjob.notify = 'off' (the embedded store: one process) sends none.
      `CREATE OR REPLACE FUNCTION ${s}.jobs_history() RETURNS trigger LANGUAGE plpgsql AS $fn$
      DECLARE
        status_changed boolean := TG_OP = 'INSERT' OR NEW.status <> OLD.status OR NEW.attempt <> OLD.attempt;
        notify boolean := coalesce(current_setting('chjob.notify', true), '') <> 'off';
        news boolean;
        sender text;
        state jsonb;
        head text;
        payload text;
      BEGIN
        news := notify AND (TG_OP = 'INSERT' OR NEW.notified_at IS DISTINCT FROM OLD.notified_at);
        IF status_changed OR news THEN
          state := to_jsonb(NEW) - 'query_text' - 'request_hash' - 'notified_at' - 'query_hash' - 'target';
        END IF;
        IF status_changed THEN
          INSERT INTO ${s}.job_states (job_id, version, state) VALUES (NEW.id, NEW.version, state);
        END IF;
        IF NOT notify THEN RETURN NULL; END IF;
        sender := replace(current_setting('application_name'), ':', '_');
        IF news THEN
          head := NEW.id::text || ':' || NEW.version || ':' || sender;
          payload := head || ':' || state::text;
          PERFORM pg_notify(TG_TABLE_SCHEMA, CASE WHEN octet_length(payload) > 7900 THEN head ELSE payload END);
        END IF;
        IF TG_OP = 'INSERT' OR (OLD.owner IS NOT NULL AND NEW.owner IS NULL)
            OR (NEW.owner IS NOT NULL AND NEW.lease_until <= clock_timestamp() AND OLD.lease_until > clock_timestamp()) THEN
          PERFORM pg_notify(TG_TABLE_SCHEMA, 'q:' || sender);
        END IF;
        RETURN NULL;
      END $fn$`,
    ],
  },
  {
    version: 6,
    name: "claims: owned jobs in queue order",
    statements: (s) => [
      // Every claim looks for orphans: owned jobs whose lease ran out, oldest first (ORDER BY seq
      // LIMIT n). With no statistics (PGlite never runs autovacuum) the planner walked the seq
      // index through every stored job, finished ones included (100 ms a claim at 100,000 jobs,
      // on the event loop): this index holds only the few owned jobs, in that order.
      `CREATE INDEX jobs_orphans ON ${s}.jobs (seq) WHERE owner IS NOT NULL`,
    ],
  },
];

export const LATEST_VERSION = MIGRATIONS.at(-1)!.version;

export class SchemaTooNewError extends Error {
  override readonly name = "SchemaTooNewError";
}

/** Creates the schema or brings it up to LATEST_VERSION; returns the versions applied. */
export async function migrate(client: SqlClient, schemaName: string): Promise<number[]> {
  const s = quoteIdent(schemaName);
  return client.withSession(async (session) => {
    await session.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [`chjob migrations ${schemaName}`]);
    try {
      await session.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await session.query(
        `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const [row] = await session.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_migrations`);
      const current = row?.v ?? 0;
      if (current > LATEST_VERSION) {
        throw new SchemaTooNewError(
          `the job store's schema ${schemaName} is at version ${current}, newer than this chjob knows (${LATEST_VERSION}): run a newer chjob, or give this one another CHJOB_DATABASE_SCHEMA`,
        );
      }
      const applied: number[] = [];
      for (const m of MIGRATIONS) {
        if (m.version <= current) continue;
        await inTransaction(session, async () => {
          for (const statement of m.statements(s, schemaName)) await session.query(statement);
          await session.query(`INSERT INTO ${s}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
        });
        applied.push(m.version);
      }
      return applied;
    } finally {
      await session.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [`chjob migrations ${schemaName}`]).catch(() => undefined);
    }
  });
}

async function inTransaction(session: SqlRunner, body: () => Promise<void>): Promise<void> {
  await session.query("BEGIN");
  try {
    await body();
    await session.query("COMMIT");
  } catch (err) {
    await session.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}
