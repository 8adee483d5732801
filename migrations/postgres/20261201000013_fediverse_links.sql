-- Fediverse links (PostgreSQL). Keep in step with migrations/sqlite.

-- A patron's linked fediverse account (full acct user@host, its profile URL
-- at https) and what they agreed to: shown on the public page, mentioned in
-- a thank-you post. A sponsor's opt-in to its amount in a thank-you post.
ALTER TABLE supporters ADD COLUMN fediverse_acct TEXT;
ALTER TABLE supporters ADD COLUMN fediverse_url TEXT;
ALTER TABLE supporters ADD COLUMN fediverse_linked_at TIMESTAMPTZ;
ALTER TABLE supporters ADD COLUMN fediverse_public BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE supporters ADD COLUMN fediverse_mention BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE supporters ADD COLUMN amount_in_posts BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX supporters_fediverse_acct ON supporters (fediverse_acct) WHERE fediverse_acct IS NOT NULL;

-- One OAuth app per instance and redirect URI: the console's sign-in and
-- the patrons' linking each keep theirs at the same instance.
ALTER TABLE oauth_apps DROP CONSTRAINT oauth_apps_pkey;
ALTER TABLE oauth_apps ADD PRIMARY KEY (instance_url, redirect_uri);

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
    posted_at  TIMESTAMPTZ NOT NULL
);

-- Role sync: whether each linked account counted as an active supporter at
-- the last daily look, and each change found then, reported until acknowledged.
CREATE TABLE fediverse_role_state (
    acct       TEXT PRIMARY KEY,
    active     BOOLEAN NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE fediverse_role_changes (
    id          BIGSERIAL PRIMARY KEY,
    acct        TEXT NOT NULL,
    active      BOOLEAN NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL,
    reported_at TIMESTAMPTZ,
    reported_by TEXT
);
CREATE INDEX fediverse_role_changes_open ON fediverse_role_changes (id) WHERE reported_at IS NULL;
