-- Reports are cached per range until the books change; the latest pledge
-- change is read from this index (see store::reports::fingerprint).
CREATE INDEX pledges_updated ON pledges (updated_at);
