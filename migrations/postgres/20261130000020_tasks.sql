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
