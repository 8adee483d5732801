-- Importers (SQLite). Keep in step with migrations/postgres.
--
-- Money and pledges moved over from another platform keep that platform as
-- their source, with the platform's own id as `external_ref`, so the
-- UNIQUE (source, external_ref) of both tables makes a second import of the
-- same file a no-op. 'import' is a generic CSV with a column mapping.
--
-- The CHECK on `source` only widens: every row already satisfies the new
-- one. SQLite cannot alter a CHECK, and rebuilding these two tables would
-- mean dropping and recreating their 5 triggers (append-only guards,
-- supporter summaries) and 9 indexes, with foreign keys switched off
-- outside a transaction; so the constraint text is edited in place, which
-- SQLite documents for loosening a constraint ("Making Other Kinds Of Table
-- Schema Changes", https://www.sqlite.org/lang_altertable.html). Triggers,
-- indexes, foreign keys and columns added by other migrations stay exactly
-- as they were. The CREATE TABLE below changes the schema cookie, so every
-- connection reloads the schema; RESET reloads this one's.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, 'CHECK (source IN (''manual'', ''stripe''))',
    'CHECK (source IN (''manual'', ''stripe'', ''opencollective'', ''patreon'', ''liberapay'', ''kofi'', ''github_sponsors'', ''import''))')
WHERE type = 'table' AND name IN ('pledges', 'ledger_entries');
PRAGMA writable_schema = RESET;

-- A file uploaded in the console, kept between its dry run and the
-- owner's confirmation (and read again, row by row, to commit it).
CREATE TABLE import_uploads (
    id           INTEGER PRIMARY KEY,
    token        TEXT        NOT NULL CONSTRAINT import_uploads_token_key UNIQUE,
    admin_id     BIGINT      NOT NULL,
    file_name    TEXT        NOT NULL,
    format       TEXT        NOT NULL,
    mapping      TEXT        NOT NULL,
    content      BLOB        NOT NULL,
    created_at   TEXT        NOT NULL,
    committed_at TEXT
);
CREATE INDEX import_uploads_created ON import_uploads (created_at);
