-- One durable task queue. A task is enqueued in the transaction of the
-- change that needs it, claimed under a lease (FOR UPDATE SKIP LOCKED), and
-- retried with one backoff policy until it succeeds or is dead-lettered.
CREATE TABLE tasks (
    id            BIGSERIAL   PRIMARY KEY,
    kind          TEXT        NOT NULL,
    -- What makes two tasks the same work: a pending one absorbs a repeat.
    dedupe_key    TEXT        NOT NULL,
    payload       TEXT        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('pending', 'running', 'done', 'dead')),
    attempts      INTEGER     NOT NULL DEFAULT 0,
    run_at        TIMESTAMPTZ NOT NULL,
    locked_by     TEXT,
    locked_until  TIMESTAMPTZ,
    last_error    TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ
);
CREATE UNIQUE INDEX tasks_pending_once ON tasks (kind, dedupe_key) WHERE status = 'pending';
CREATE INDEX tasks_due ON tasks (run_at) WHERE status IN ('pending', 'running');
CREATE INDEX tasks_by_status ON tasks (status, id);

-- Replicas hear of new or rescheduled-now tasks (see 20261130000010_notify).
CREATE TRIGGER tasks_inserted
    AFTER INSERT ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION patronage_notify_work();

CREATE TRIGGER tasks_due
    AFTER UPDATE OF status, run_at ON tasks
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.run_at <= now() + interval '1 second')
    EXECUTE FUNCTION patronage_notify_work();
