-- Costs: what running the instance costs, against what comes in.

-- Costs that come back every month or year. Only `ends_on` ever changes
-- (ending one), audited.
CREATE TABLE recurring_costs (
    id           INTEGER PRIMARY KEY,
    vendor       TEXT   NOT NULL,
    category     TEXT   NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    currency     TEXT   NOT NULL,
    interval     TEXT   NOT NULL CHECK (interval IN ('month', 'year')),
    starts_on    TEXT   NOT NULL,
    ends_on      TEXT,
    note         TEXT   NOT NULL DEFAULT '',
    created_at   TEXT   NOT NULL,
    created_by   TEXT,
    updated_at   TEXT   NOT NULL,
    CHECK (ends_on IS NULL OR ends_on >= starts_on)
);

-- Append-only, like the ledger: a mistake is voided (expense_voids), never
-- edited or deleted. `amount_minor` is in the campaign currency and is what
-- every figure uses; money paid in another currency keeps what was paid in
-- `original_amount_minor` and `original_currency`.
CREATE TABLE expenses (
    id                    INTEGER PRIMARY KEY,
    spent_on              TEXT   NOT NULL,
    month                 TEXT   NOT NULL,
    vendor                TEXT   NOT NULL,
    category              TEXT   NOT NULL,
    amount_minor          BIGINT NOT NULL CHECK (amount_minor > 0),
    currency              TEXT   NOT NULL,
    original_amount_minor BIGINT CHECK (original_amount_minor > 0),
    original_currency     TEXT,
    note                  TEXT   NOT NULL DEFAULT '',
    external_ref          TEXT,
    -- The recurring cost this pays, and the month it pays it for.
    recurring_cost_id     BIGINT REFERENCES recurring_costs (id),
    recurring_month       TEXT,
    recorded_at           TEXT   NOT NULL,
    created_by            TEXT,
    CHECK ((original_amount_minor IS NULL) = (original_currency IS NULL)),
    CHECK ((recurring_cost_id IS NULL) = (recurring_month IS NULL))
);
CREATE INDEX expenses_month ON expenses (month);
CREATE INDEX expenses_recurring ON expenses (recurring_cost_id, recurring_month);
CREATE TRIGGER expenses_no_update BEFORE UPDATE ON expenses
BEGIN SELECT RAISE(ABORT, 'expenses is append-only'); END;
CREATE TRIGGER expenses_no_delete BEFORE DELETE ON expenses
BEGIN SELECT RAISE(ABORT, 'expenses is append-only'); END;

-- A voided expense: counted nowhere, shown struck through. Once each.
CREATE TABLE expense_voids (
    expense_id BIGINT NOT NULL PRIMARY KEY REFERENCES expenses (id),
    reason     TEXT   NOT NULL,
    voided_at  TEXT   NOT NULL,
    voided_by  TEXT
);
CREATE TRIGGER expense_voids_no_update BEFORE UPDATE ON expense_voids
BEGIN SELECT RAISE(ABORT, 'expense_voids is append-only'); END;
CREATE TRIGGER expense_voids_no_delete BEFORE DELETE ON expense_voids
BEGIN SELECT RAISE(ABORT, 'expense_voids is append-only'); END;

-- Which vendors and categories the owner lets the public see by name;
-- a name without a row here is private.
CREATE TABLE cost_labels (
    kind       TEXT    NOT NULL CHECK (kind IN ('vendor', 'category')),
    name       TEXT    NOT NULL,
    public     INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (kind, name)
);

-- The books before patronage: the balance at the start of a month. And
-- whether the public monthly goal follows the monthly costs.
CREATE TABLE cost_settings (
    id                    INTEGER PRIMARY KEY CHECK (id = 1),
    opening_balance_minor BIGINT  NOT NULL DEFAULT 0,
    opening_month         TEXT,
    goal_follows_costs    INTEGER NOT NULL DEFAULT 0,
    updated_at            TEXT    NOT NULL
);
INSERT INTO cost_settings (id, updated_at)
VALUES (1, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'));

-- Monthly recurring income (the costs report's coverage, the funding
-- totals) sums running pledges per interval: read from this index alone.
CREATE INDEX pledges_recurring_sums ON pledges (status, currency, interval, amount_minor);
