-- Public pages (SQLite). Keep in step with migrations/postgres.

-- Whether a sponsor is currently shown, as last recorded by the publication
-- sweep; every change is audited with its reason. Public views also filter by
-- date themselves, so a sponsor never outlives its grace period waiting for
-- the sweep.
ALTER TABLE supporters ADD COLUMN published INTEGER NOT NULL DEFAULT 0;

-- Checked, re-encoded logos, kept in the database so every replica serves
-- them. One light logo and an optional dark-mode variant per sponsor.
CREATE TABLE sponsor_logos (
    supporter_id BIGINT  NOT NULL REFERENCES supporters (id),
    variant      TEXT    NOT NULL CHECK (variant IN ('light', 'dark')),
    mime         TEXT    NOT NULL,
    bytes        BLOB    NOT NULL,
    width        BIGINT  NOT NULL,
    height       BIGINT  NOT NULL,
    alt_text     TEXT    NOT NULL,
    -- A logo the sponsor uploaded shows only once an admin approves it.
    approved     INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    PRIMARY KEY (supporter_id, variant)
);
