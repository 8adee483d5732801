-- Sponsor applications (PostgreSQL). Keep in step with migrations/sqlite.

-- Logo-upload links carry the version they were issued at; an upload
-- through a link, or a rejection, moves the version on, so earlier links
-- stop working (single use, revoked on rejection).
ALTER TABLE supporters ADD COLUMN logo_link_version BIGINT NOT NULL DEFAULT 0;

-- A sponsor who asked to pay by invoice: the invoice is created in Stripe
-- only once an owner approves the application.
ALTER TABLE checkout_sessions ADD COLUMN by_invoice BOOLEAN NOT NULL DEFAULT FALSE;
