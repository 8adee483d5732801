-- Console sign-ins. The cookie carries a random id and only its hash is
-- kept, so a copy of the database opens no session. A session ends at its
-- absolute expiry, after an idle spell, or when revoked (sign-out, sign-out
-- everywhere).
CREATE TABLE admin_sessions (
    id_hash      TEXT        PRIMARY KEY,
    admin_id     BIGINT      NOT NULL REFERENCES admins (id),
    -- Every console form carries it; a forged post cannot know it.
    csrf_token   TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    user_agent   TEXT        NOT NULL DEFAULT '',
    -- Password checked, second factor not yet: such a session opens nothing
    -- but the page that asks for the code.
    second_factor_due BOOLEAN NOT NULL DEFAULT FALSE,
    -- Wrong codes typed in this session: a few, then the password again.
    second_factor_tries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX admin_sessions_by_admin ON admin_sessions (admin_id) WHERE revoked_at IS NULL;
