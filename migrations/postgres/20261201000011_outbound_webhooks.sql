-- Signed outbound webhooks (Standard Webhooks). Every change worth telling
-- is an event, written in the transaction of the change; each enabled
-- endpoint subscribed to its type gets a delivery task in the same commit.

-- The event log: what happened, as a JSON snapshot taken when it happened
-- (with everything a trusted endpoint may see; what others get is cut
-- from it at delivery). `webhook_id` is the message id every delivery and
-- redelivery of it carries, so receivers can drop repeats.
CREATE TABLE events (
    id          BIGSERIAL   PRIMARY KEY,
    webhook_id  TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    payload     TEXT    NOT NULL
);
CREATE INDEX events_by_time ON events (occurred_at, id);

-- Where events go. `secret` signs; while a rotation is recent the previous
-- secret signs too, until `previous_secret_expires_at`. An endpoint failing
-- since `failing_since` for long enough is disabled with a reason.
CREATE TABLE webhook_endpoints (
    id                         BIGSERIAL   PRIMARY KEY,
    url                        TEXT    NOT NULL,
    description                TEXT    NOT NULL DEFAULT '',
    event_types                TEXT    NOT NULL,
    enabled                    BOOLEAN NOT NULL DEFAULT TRUE,
    trusted                    BOOLEAN NOT NULL DEFAULT FALSE,
    secret                     TEXT    NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    failing_since              TIMESTAMPTZ,
    consecutive_failures       INTEGER NOT NULL DEFAULT 0,
    disabled_reason            TEXT,
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL
);

-- Every try of every delivery: the admins' delivery log.
CREATE TABLE webhook_deliveries (
    id            BIGSERIAL   PRIMARY KEY,
    endpoint_id   BIGINT  NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id      BIGINT  NOT NULL REFERENCES events (id),
    attempt       INTEGER NOT NULL,
    ok            BOOLEAN NOT NULL,
    status_code   INTEGER,
    latency_ms    BIGINT,
    response_body TEXT,
    error         TEXT,
    attempted_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);

-- Each goal amount is reached once: `goal.reached` fires for the row that
-- inserts it.
CREATE TABLE goal_milestones (
    goal_minor BIGINT  NOT NULL,
    currency   TEXT    NOT NULL,
    reached_at TIMESTAMPTZ NOT NULL,
    event_id   BIGINT  REFERENCES events (id),
    PRIMARY KEY (goal_minor, currency)
);
