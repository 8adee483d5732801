-- The mailer's claim takes pending messages in id order. The outbox keeps
-- every message sent, so without this index each claim read them all
-- (seen as most of the database's time while webhooks queued receipts).
CREATE INDEX outbox_pending ON outbox (id) WHERE status = 'pending';
