-- Scheduled jobs, the email outbox, dunning records, daily funding snapshots
-- and reconciliation (SQLite). Keep in step with migrations/postgres.

-- One row per firing of a job: claimed (inserted) before the job runs, so
-- each (job, slot) runs once across replicas. A run whose lease lapsed
-- (its replica died) is taken over by another replica.
CREATE TABLE job_runs (
    job         TEXT        NOT NULL,
    slot        TEXT        NOT NULL,
    owner       TEXT        NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    attempts    INTEGER     NOT NULL DEFAULT 1,
    started_at  TEXT        NOT NULL,
    lease_until TEXT        NOT NULL,
    finished_at TEXT       ,
    error       TEXT,
    summary     TEXT,
    PRIMARY KEY (job, slot)
);
CREATE INDEX job_runs_started ON job_runs (started_at);

-- Small durable state of jobs, e.g. the reconciliation's event cursor.
CREATE TABLE job_state (
    key        TEXT PRIMARY KEY,
    value      TEXT        NOT NULL,
    updated_at TEXT        NOT NULL
);

-- Every email, written in the transaction of the change that causes it and
-- sent by a worker. (cause, recipient) is unique: once per cause and person.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    cause           TEXT        NOT NULL,
    recipient       TEXT        NOT NULL,
    template        TEXT        NOT NULL,
    locale          TEXT        NOT NULL,
    context         TEXT        NOT NULL,
    supporter_id    BIGINT REFERENCES supporters (id),
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TEXT        NOT NULL,
    locked_by       TEXT,
    locked_until    TEXT       ,
    last_error      TEXT,
    created_at      TEXT        NOT NULL,
    sent_at         TEXT       ,
    CONSTRAINT outbox_cause_recipient_key UNIQUE (cause, recipient)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- Invoices that failed or waited for the payer, and whether they were
-- recovered: dunning emails and the monthly report's counts.
CREATE TABLE payment_issues (
    invoice_id      TEXT PRIMARY KEY,
    supporter_id    BIGINT REFERENCES supporters (id),
    pledge_id       BIGINT REFERENCES pledges (id),
    amount_minor    BIGINT      NOT NULL,
    currency        TEXT        NOT NULL,
    first_failed_at TEXT        NOT NULL,
    recovered_at    TEXT       
);

-- One row per day: the public figures as they were, for history and charts.
CREATE TABLE funding_snapshots (
    day             TEXT PRIMARY KEY,
    patrons         BIGINT      NOT NULL,
    sponsors        BIGINT      NOT NULL,
    monthly_minor   BIGINT      NOT NULL,
    currency        TEXT        NOT NULL,
    goal_minor      BIGINT,
    created_at      TEXT        NOT NULL
);

-- What the last reconciliation found different between Stripe and us.
CREATE TABLE reconciliation_mismatches (
    id              INTEGER PRIMARY KEY,
    run_slot        TEXT        NOT NULL,
    kind            TEXT        NOT NULL CHECK (kind IN ('missing', 'extra', 'amount', 'status')),
    subscription_id TEXT        NOT NULL,
    pledge_id       BIGINT REFERENCES pledges (id),
    ours            TEXT,
    theirs          TEXT,
    detected_at     TEXT        NOT NULL,
    CONSTRAINT reconciliation_mismatches_key UNIQUE (run_slot, subscription_id, kind)
);

-- The language a supporter's emails are written in (NULL: the default).
ALTER TABLE supporters ADD COLUMN locale TEXT;
