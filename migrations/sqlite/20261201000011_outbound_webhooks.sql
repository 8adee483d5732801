-- Signed outbound webhooks (Standard Webhooks). Every change worth telling
-- is an event, written in the transaction of the change; each enabled
-- endpoint subscribed to its type gets a delivery task in the same commit.

-- The event log: what happened, as a JSON snapshot taken when it happened
-- (with everything a trusted endpoint may see; what others get is cut
-- from it at delivery). `webhook_id` is the message id every delivery and
-- redelivery of it carries, so receivers can drop repeats.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  TEXT    NOT NULL UNIQUE,
    type        TEXT    NOT NULL,
    occurred_at TEXT    NOT NULL,
    payload     TEXT    NOT NULL
);
CREATE INDEX events_by_time ON events (occurred_at, id);

-- Where events go. `secret` signs; while a rotation is recent the previous
-- secret signs too, until `previous_secret_expires_at`. An endpoint failing
-- since `failing_since` for long enough is disabled with a reason.
CREATE TABLE webhook_endpoints (
    id                         INTEGER PRIMARY KEY AUTOINCREMENT,
    url                        TEXT    NOT NULL,
    description                TEXT    NOT NULL DEFAULT '',
    event_types                TEXT    NOT NULL,
    enabled                    INTEGER NOT NULL DEFAULT 1,
    trusted                    INTEGER NOT NULL DEFAULT 0,
    secret                     TEXT    NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TEXT,
    failing_since              TEXT,
    consecutive_failures       INTEGER NOT NULL DEFAULT 0,
    disabled_reason            TEXT,
    created_at                 TEXT    NOT NULL,
    updated_at                 TEXT    NOT NULL
);

-- Every try of every delivery: the admins' delivery log.
CREATE TABLE webhook_deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id   INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id      INTEGER NOT NULL REFERENCES events (id),
    attempt       INTEGER NOT NULL,
    ok            INTEGER NOT NULL,
    status_code   INTEGER,
    latency_ms    BIGINT,
    response_body TEXT,
    error         TEXT,
    attempted_at  TEXT    NOT NULL
);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);

-- Each goal amount is reached once: `goal.reached` fires for the row that
-- inserts it.
CREATE TABLE goal_milestones (
    goal_minor BIGINT  NOT NULL,
    currency   TEXT    NOT NULL,
    reached_at TEXT    NOT NULL,
    event_id   INTEGER REFERENCES events (id),
    PRIMARY KEY (goal_minor, currency)
);
