-- The supporter summary moves off the supporter's row to a narrow row of
-- its own. Every payment rewrote the supporter's row, and since the
-- lifetime value is indexed that update could never be HOT: each one wrote
-- into all nine of the row's indexes, two of them trigram indexes (about
-- forty entries for an email and a name). A summary row carries two.
CREATE TABLE supporter_summaries (
    supporter_id BIGINT PRIMARY KEY REFERENCES supporters (id) ON DELETE CASCADE,
    lifetime_minor BIGINT NOT NULL DEFAULT 0,
    last_payment_at TIMESTAMPTZ,
    pledge_status TEXT,
    pledge_tier_id BIGINT
);
INSERT INTO supporter_summaries (supporter_id, lifetime_minor, last_payment_at, pledge_status, pledge_tier_id)
    SELECT id, lifetime_minor, last_payment_at, pledge_status, pledge_tier_id FROM supporters;
CREATE INDEX supporter_summaries_by_lifetime ON supporter_summaries (lifetime_minor, supporter_id);
DROP INDEX supporters_by_lifetime;
ALTER TABLE supporters
    DROP COLUMN lifetime_minor,
    DROP COLUMN last_payment_at,
    DROP COLUMN pledge_status,
    DROP COLUMN pledge_tier_id;

-- Every supporter has one, from the start: the directory joins it.
CREATE FUNCTION supporter_summaries_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO supporter_summaries (supporter_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER supporter_summaries_new AFTER INSERT ON supporters
    FOR EACH ROW EXECUTE FUNCTION supporter_summaries_new();

-- The same rules as before (20261201000009), on the new row.
CREATE OR REPLACE FUNCTION supporters_summary_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE supporter_summaries SET
        lifetime_minor = lifetime_minor + NEW.amount_minor,
        last_payment_at = CASE
            WHEN NEW.reverses_entry_id IS NOT NULL THEN (SELECT MAX(e.occurred_at) FROM ledger_entries e
                WHERE e.supporter_id = NEW.supporter_id AND e.kind IN ('payment', 'manual') AND e.amount_minor > 0
                AND e.reverses_entry_id IS NULL
                AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.reverses_entry_id = e.id))
            WHEN NEW.kind IN ('payment', 'manual') AND NEW.amount_minor > 0
                 AND (last_payment_at IS NULL OR last_payment_at < NEW.occurred_at)
            THEN NEW.occurred_at ELSE last_payment_at END
    WHERE supporter_id = NEW.supporter_id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION supporters_summary_pledge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE supporter_summaries SET
        pledge_status = (SELECT p.status FROM pledges p WHERE p.supporter_id = NEW.supporter_id ORDER BY
            CASE p.status WHEN 'past_due' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, p.id DESC LIMIT 1),
        pledge_tier_id = (SELECT p.tier_id FROM pledges p WHERE p.supporter_id = NEW.supporter_id
            AND p.status IN ('active', 'past_due') ORDER BY p.id DESC LIMIT 1)
    WHERE supporter_id = NEW.supporter_id;
    RETURN NULL;
END
$$;
