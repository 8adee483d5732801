-- "Sign in with Mastodon": the account an owner linked to an admin (its
-- full acct, user@host), the OAuth app registered once per instance, and
-- the sign-ins under way (their state, PKCE verifier and where to go next).
ALTER TABLE admins ADD COLUMN mastodon_acct TEXT;
CREATE UNIQUE INDEX admins_mastodon_acct ON admins (mastodon_acct) WHERE mastodon_acct IS NOT NULL;
CREATE TABLE oauth_apps (
    instance_url  TEXT PRIMARY KEY,
    redirect_uri  TEXT NOT NULL,
    client_id     TEXT NOT NULL,
    client_secret TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    verifier   TEXT NOT NULL,
    next       TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
