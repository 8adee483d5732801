-- Public pages (PostgreSQL). Keep in step with migrations/sqlite.

-- Whether a sponsor is currently shown, as last recorded by the publication
-- sweep; every change is audited with its reason. Public views also filter by
-- date themselves, so a sponsor never outlives its grace period waiting for
-- the sweep.
ALTER TABLE supporters ADD COLUMN published BOOLEAN NOT NULL DEFAULT FALSE;

-- Checked, re-encoded logos, kept in the database so every replica serves
-- them. One light logo and an optional dark-mode variant per sponsor.
CREATE TABLE sponsor_logos (
    supporter_id BIGINT      NOT NULL REFERENCES supporters (id),
    variant      TEXT        NOT NULL CHECK (variant IN ('light', 'dark')),
    mime         TEXT        NOT NULL,
    bytes        BYTEA       NOT NULL,
    width        BIGINT      NOT NULL,
    height       BIGINT      NOT NULL,
    alt_text     TEXT        NOT NULL,
    -- A logo the sponsor uploaded shows only once an admin approves it.
    approved     BOOLEAN     NOT NULL,
    sha256       TEXT        NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (supporter_id, variant)
);
