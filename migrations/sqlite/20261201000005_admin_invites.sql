-- An owner invites a co-admin or an accountant: a single-use link (kept by
-- hash) that lets the invitee set their own password.
CREATE TABLE admin_invites (
    token_hash       TEXT    PRIMARY KEY,
    email            TEXT    NOT NULL,
    email_normalized TEXT    NOT NULL,
    role             TEXT    NOT NULL CHECK (role IN ('owner', 'viewer')),
    invited_by       INTEGER REFERENCES admins (id),
    created_at       TEXT    NOT NULL,
    expires_at       TEXT    NOT NULL,
    used_at          TEXT
);
