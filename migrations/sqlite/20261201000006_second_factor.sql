-- An optional second factor per admin: a TOTP secret (RFC 6238), the last
-- time step accepted (a code works once), a secret being set up, and
-- single-use recovery codes kept by hash.
ALTER TABLE admins ADD COLUMN totp_secret TEXT;
ALTER TABLE admins ADD COLUMN totp_pending_secret TEXT;
ALTER TABLE admins ADD COLUMN totp_last_step BIGINT;
CREATE TABLE admin_recovery_codes (
    admin_id  INTEGER NOT NULL REFERENCES admins (id),
    code_hash TEXT    NOT NULL,
    used_at   TEXT,
    PRIMARY KEY (admin_id, code_hash)
);
