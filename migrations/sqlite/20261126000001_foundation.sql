-- Foundation schema (SQLite). Keep in step with migrations/postgres.

-- Bumped by every write that changes public data; replicas poll it.
CREATE TABLE data_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO data_version (id, version) VALUES (1, 1);

CREATE TABLE admins (
    id               INTEGER PRIMARY KEY,
    email            TEXT        NOT NULL,
    email_normalized TEXT        NOT NULL CONSTRAINT admins_email_normalized_key UNIQUE,
    password_hash    TEXT        NOT NULL,
    role             TEXT        NOT NULL CHECK (role IN ('owner', 'viewer')),
    disabled         INTEGER     NOT NULL DEFAULT 0,
    created_at       TEXT        NOT NULL
);

-- One-time tokens that let the first owner be created over HTTP.
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at TEXT        NOT NULL,
    expires_at TEXT        NOT NULL,
    used_at    TEXT
);

CREATE TABLE campaign (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    name               TEXT        NOT NULL,
    description        TEXT        NOT NULL,
    currency           TEXT        NOT NULL,
    monthly_goal_minor BIGINT CHECK (monthly_goal_minor > 0),
    public_base_url    TEXT,
    updated_at         TEXT        NOT NULL
);
INSERT INTO campaign (id, name, description, currency, updated_at)
VALUES (1, 'Our community', '', 'EUR', strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));

CREATE TABLE tiers (
    id             INTEGER PRIMARY KEY,
    kind           TEXT        NOT NULL CHECK (kind IN ('patron', 'sponsor')),
    name           TEXT        NOT NULL,
    description    TEXT        NOT NULL,
    amount_minor   BIGINT      NOT NULL CHECK (amount_minor > 0),
    currency       TEXT        NOT NULL,
    interval       TEXT        NOT NULL CHECK (interval IN ('month', 'year')),
    pwyw_min_minor BIGINT CHECK (pwyw_min_minor > 0),
    slots          BIGINT CHECK (slots > 0),
    rank           BIGINT      NOT NULL DEFAULT 0,
    archived       INTEGER     NOT NULL DEFAULT 0,
    created_at     TEXT        NOT NULL,
    updated_at     TEXT        NOT NULL
);
-- Two active tiers of one kind may not share a name.
CREATE UNIQUE INDEX tiers_active_name_key ON tiers (kind, lower(name)) WHERE archived = 0;

CREATE TABLE supporters (
    id               INTEGER PRIMARY KEY,
    kind             TEXT        NOT NULL CHECK (kind IN ('patron', 'sponsor')),
    email            TEXT        NOT NULL,
    email_normalized TEXT        NOT NULL,
    display_name     TEXT        NOT NULL,
    visibility       TEXT        NOT NULL CHECK (visibility IN ('public', 'private', 'secret')),
    website_url      TEXT,
    tier_id          BIGINT REFERENCES tiers (id),
    sponsor_status   TEXT CHECK (sponsor_status IN ('pending', 'approved', 'rejected')),
    status_reason    TEXT,
    paid_through     TEXT,
    logo_ref         TEXT,
    created_at       TEXT        NOT NULL,
    updated_at       TEXT        NOT NULL,
    CHECK (kind = 'patron' OR (sponsor_status IS NOT NULL AND website_url IS NOT NULL))
);
-- A patron is one person per email address.
CREATE UNIQUE INDEX supporters_email_normalized_patron_key ON supporters (email_normalized) WHERE kind = 'patron';
CREATE INDEX supporters_kind_id ON supporters (kind, id);
CREATE INDEX supporters_public_sponsors ON supporters (sponsor_status, paid_through) WHERE kind = 'sponsor';

CREATE TABLE pledges (
    id           INTEGER PRIMARY KEY,
    supporter_id BIGINT      NOT NULL REFERENCES supporters (id),
    tier_id      BIGINT REFERENCES tiers (id),
    amount_minor BIGINT      NOT NULL CHECK (amount_minor > 0),
    currency     TEXT        NOT NULL,
    interval     TEXT        NOT NULL CHECK (interval IN ('month', 'year')),
    status       TEXT        NOT NULL CHECK (status IN ('active', 'past_due', 'canceled')),
    source       TEXT        NOT NULL CHECK (source IN ('manual', 'stripe')),
    external_ref TEXT,
    started_at   TEXT        NOT NULL,
    ended_at     TEXT,
    created_at   TEXT        NOT NULL,
    updated_at   TEXT        NOT NULL,
    CONSTRAINT pledges_external_ref_key UNIQUE (source, external_ref)
);
CREATE INDEX pledges_status_tier ON pledges (status, tier_id);
CREATE INDEX pledges_supporter ON pledges (supporter_id);
CREATE INDEX pledges_started ON pledges (started_at);
CREATE INDEX pledges_ended ON pledges (ended_at);

-- Append-only: corrections are new, reversing entries.
CREATE TABLE ledger_entries (
    id                INTEGER PRIMARY KEY,
    kind              TEXT        NOT NULL CHECK (kind IN ('payment', 'refund', 'dispute', 'fee', 'manual')),
    amount_minor      BIGINT      NOT NULL,
    currency          TEXT        NOT NULL,
    pledge_id         BIGINT REFERENCES pledges (id),
    supporter_id      BIGINT REFERENCES supporters (id),
    tier_id           BIGINT REFERENCES tiers (id),
    source            TEXT        NOT NULL CHECK (source IN ('manual', 'stripe')),
    external_ref      TEXT        NOT NULL,
    occurred_at       TEXT        NOT NULL,
    recorded_at       TEXT        NOT NULL,
    note              TEXT        NOT NULL DEFAULT '',
    reverses_entry_id BIGINT REFERENCES ledger_entries (id)
                      CONSTRAINT ledger_entries_reverses_entry_id_key UNIQUE,
    created_by        TEXT,
    -- The same external payment can never be recorded twice.
    CONSTRAINT ledger_entries_external_ref_key UNIQUE (source, external_ref)
);
CREATE INDEX ledger_entries_occurred ON ledger_entries (occurred_at);
CREATE INDEX ledger_entries_pledge ON ledger_entries (pledge_id);

CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END;

-- Per-month sums kept in the same transaction as each ledger insert, so
-- totals and reports never scan the ledger. tier_key 0 means "no tier".
CREATE TABLE ledger_monthly (
    month        TEXT   NOT NULL,
    currency     TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    tier_key     BIGINT NOT NULL,
    amount_minor BIGINT NOT NULL,
    entries      BIGINT NOT NULL,
    PRIMARY KEY (month, currency, kind, tier_key)
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT        NOT NULL,
    actor_id    BIGINT,
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    target_type TEXT        NOT NULL,
    target_id   BIGINT,
    details     TEXT        NOT NULL
);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
