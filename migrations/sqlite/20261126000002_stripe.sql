-- Stripe (SQLite). Keep in step with migrations/postgres.

ALTER TABLE supporters ADD COLUMN stripe_customer_id TEXT;
CREATE UNIQUE INDEX supporters_stripe_customer_id_key ON supporters (stripe_customer_id);

ALTER TABLE tiers ADD COLUMN stripe_product_id TEXT;

-- Every Stripe Price we made for a tier. A price change makes a new one;
-- old ones stay (subscriptions on them keep their price) but turn inactive.
CREATE TABLE stripe_prices (
    stripe_price_id TEXT PRIMARY KEY,
    tier_id         BIGINT      NOT NULL REFERENCES tiers (id),
    lookup_key      TEXT        NOT NULL,
    amount_minor    BIGINT      NOT NULL,
    currency        TEXT        NOT NULL,
    interval        TEXT        NOT NULL,
    active          INTEGER     NOT NULL,
    created_at      TEXT        NOT NULL
);
CREATE INDEX stripe_prices_tier ON stripe_prices (tier_id, active);

ALTER TABLE pledges ADD COLUMN current_period_end TEXT;
ALTER TABLE pledges ADD COLUMN cancel_at_period_end INTEGER NOT NULL DEFAULT 0;

-- Checkout sessions we created, found again by the caller's Idempotency-Key.
CREATE TABLE checkout_sessions (
    id                INTEGER PRIMARY KEY,
    idempotency_key   TEXT        NOT NULL CONSTRAINT checkout_sessions_idempotency_key_key UNIQUE,
    request_hash      TEXT        NOT NULL,
    stripe_session_id TEXT,
    purpose           TEXT        NOT NULL CHECK (purpose IN ('patron', 'gift', 'sponsor')),
    supporter_id      BIGINT REFERENCES supporters (id),
    tier_id           BIGINT REFERENCES tiers (id),
    amount_minor      BIGINT      NOT NULL,
    currency          TEXT        NOT NULL,
    url               TEXT,
    status            TEXT        NOT NULL CHECK (status IN ('creating', 'open', 'completed', 'failed')),
    created_at        TEXT        NOT NULL,
    completed_at      TEXT
);

-- One row per Stripe payment we booked, so refunds and disputes on its
-- charge find the pledge, supporter and tier the money belonged to.
CREATE TABLE stripe_payments (
    payment_intent  TEXT PRIMARY KEY,
    charge_id       TEXT CONSTRAINT stripe_payments_charge_id_key UNIQUE,
    invoice_id      TEXT CONSTRAINT stripe_payments_invoice_id_key UNIQUE,
    ledger_entry_id BIGINT      NOT NULL REFERENCES ledger_entries (id),
    pledge_id       BIGINT REFERENCES pledges (id),
    supporter_id    BIGINT REFERENCES supporters (id),
    tier_id         BIGINT REFERENCES tiers (id),
    created_at      TEXT        NOT NULL
);

-- Every webhook event, stored raw before we answer Stripe.
CREATE TABLE stripe_events (
    id              TEXT PRIMARY KEY,
    type            TEXT        NOT NULL,
    created         BIGINT      NOT NULL,
    payload         TEXT        NOT NULL,
    status          TEXT        NOT NULL CHECK (status IN ('pending', 'processed', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TEXT        NOT NULL,
    locked_until    TEXT,
    last_error      TEXT,
    received_at     TEXT        NOT NULL,
    processed_at    TEXT
);
CREATE INDEX stripe_events_due ON stripe_events (status, next_attempt_at);

-- Single-use sign-in links for patrons (stored by hash).
CREATE TABLE magic_links (
    token_hash   TEXT PRIMARY KEY,
    supporter_id BIGINT      NOT NULL REFERENCES supporters (id),
    purpose      TEXT        NOT NULL,
    created_at   TEXT        NOT NULL,
    expires_at   TEXT        NOT NULL,
    used_at      TEXT
);
