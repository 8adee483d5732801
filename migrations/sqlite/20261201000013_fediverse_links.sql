-- Fediverse links (SQLite). Keep in step with migrations/postgres.

-- A patron's linked fediverse account (full acct user@host, its profile URL
-- at https) and what they agreed to: shown on the public page, mentioned in
-- a thank-you post. A sponsor's opt-in to its amount in a thank-you post.
ALTER TABLE supporters ADD COLUMN fediverse_acct TEXT;
ALTER TABLE supporters ADD COLUMN fediverse_url TEXT;
ALTER TABLE supporters ADD COLUMN fediverse_linked_at TEXT;
ALTER TABLE supporters ADD COLUMN fediverse_public INTEGER NOT NULL DEFAULT 0;
ALTER TABLE supporters ADD COLUMN fediverse_mention INTEGER NOT NULL DEFAULT 0;
ALTER TABLE supporters ADD COLUMN amount_in_posts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX supporters_fediverse_acct ON supporters (fediverse_acct) WHERE fediverse_acct IS NOT NULL;

-- One OAuth app per instance and redirect URI: the console's sign-in and
-- the patrons' linking each keep theirs at the same instance.
CREATE TABLE oauth_apps_new (
    instance_url  TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (instance_url, redirect_uri)
);
INSERT INTO oauth_apps_new SELECT instance_url, redirect_uri, client_id, client_secret, created_at FROM oauth_apps;
DROP TABLE oauth_apps;
ALTER TABLE oauth_apps_new RENAME TO oauth_apps;

-- A flow under way says what it is for: an admin's sign-in, or a patron's
-- link (to which supporter, at which instance, bound to the browser that
-- started it by a cookie's hash, with the consent given).
ALTER TABLE oauth_states ADD COLUMN purpose TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE oauth_states ADD COLUMN supporter_id BIGINT REFERENCES supporters (id);
ALTER TABLE oauth_states ADD COLUMN instance_url TEXT;
ALTER TABLE oauth_states ADD COLUMN binding_hash TEXT;
ALTER TABLE oauth_states ADD COLUMN consent TEXT;

-- Posts the bot made, by their task key: a key is posted once.
CREATE TABLE fediverse_posts (
    post_key   TEXT PRIMARY KEY,
    status_id  TEXT NOT NULL,
    status_url TEXT,
    posted_at  TEXT NOT NULL
);

-- Role sync: whether each linked account counted as an active supporter at
-- the last daily look, and each change found then, reported until acknowledged.
CREATE TABLE fediverse_role_state (
    acct       TEXT PRIMARY KEY,
    active     INTEGER NOT NULL,
    checked_at TEXT NOT NULL
);
CREATE TABLE fediverse_role_changes (
    id          INTEGER PRIMARY KEY,
    acct        TEXT NOT NULL,
    active      INTEGER NOT NULL,
    detected_at TEXT NOT NULL,
    reported_at TEXT,
    reported_by TEXT
);
CREATE INDEX fediverse_role_changes_open ON fediverse_role_changes (id) WHERE reported_at IS NULL;
