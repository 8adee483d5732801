-- The console's supporter list sorts and filters by each supporter's
-- lifetime value, last payment and pledge state. Summing the ledger and
-- reading pledges per row made deep pages, searches and the CSV export
-- scan the whole ledger, so the summary lives on the supporter's row.
-- Triggers keep it, in the transaction of the write that changes it, so no
-- write path (service, webhook, seed or import) can forget it.
ALTER TABLE supporters
    ADD COLUMN lifetime_minor BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_payment_at TIMESTAMPTZ,
    -- The most pressing pledge's status: past_due, else active, else
    -- canceled; NULL without pledges.
    ADD COLUMN pledge_status TEXT,
    -- The tier of the newest running (active or past due) pledge.
    ADD COLUMN pledge_tier_id BIGINT;

UPDATE supporters SET
    lifetime_minor = COALESCE((SELECT SUM(e.amount_minor) FROM ledger_entries e WHERE e.supporter_id = supporters.id
        AND e.kind IN ('payment', 'manual', 'refund', 'dispute')), 0),
    last_payment_at = (SELECT MAX(e.occurred_at) FROM ledger_entries e WHERE e.supporter_id = supporters.id
        AND e.kind IN ('payment', 'manual') AND e.amount_minor > 0 AND e.reverses_entry_id IS NULL
        AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.reverses_entry_id = e.id)),
    pledge_status = (SELECT p.status FROM pledges p WHERE p.supporter_id = supporters.id ORDER BY
        CASE p.status WHEN 'past_due' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, p.id DESC LIMIT 1),
    pledge_tier_id = (SELECT p.tier_id FROM pledges p WHERE p.supporter_id = supporters.id
        AND p.status IN ('active', 'past_due') ORDER BY p.id DESC LIMIT 1);

-- Money in: payments and manual contributions add, refunds and disputes
-- (negative) subtract. A void is a reversing entry: it subtracts too, and
-- the last payment is then read again without the voided one.
CREATE FUNCTION supporters_summary_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE supporters SET
        lifetime_minor = lifetime_minor + NEW.amount_minor,
        last_payment_at = CASE
            WHEN NEW.reverses_entry_id IS NOT NULL THEN (SELECT MAX(e.occurred_at) FROM ledger_entries e
                WHERE e.supporter_id = NEW.supporter_id AND e.kind IN ('payment', 'manual') AND e.amount_minor > 0
                AND e.reverses_entry_id IS NULL
                AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.reverses_entry_id = e.id))
            WHEN NEW.kind IN ('payment', 'manual') AND NEW.amount_minor > 0
                 AND (last_payment_at IS NULL OR last_payment_at < NEW.occurred_at)
            THEN NEW.occurred_at ELSE last_payment_at END
    WHERE id = NEW.supporter_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER supporters_summary_ledger AFTER INSERT ON ledger_entries
    FOR EACH ROW
    WHEN (NEW.supporter_id IS NOT NULL AND NEW.kind IN ('payment', 'manual', 'refund', 'dispute'))
    EXECUTE FUNCTION supporters_summary_ledger();

CREATE FUNCTION supporters_summary_pledge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE supporters SET
        pledge_status = (SELECT p.status FROM pledges p WHERE p.supporter_id = NEW.supporter_id ORDER BY
            CASE p.status WHEN 'past_due' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, p.id DESC LIMIT 1),
        pledge_tier_id = (SELECT p.tier_id FROM pledges p WHERE p.supporter_id = NEW.supporter_id
            AND p.status IN ('active', 'past_due') ORDER BY p.id DESC LIMIT 1)
    WHERE id = NEW.supporter_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER supporters_summary_pledge_new AFTER INSERT ON pledges
    FOR EACH ROW EXECUTE FUNCTION supporters_summary_pledge();

CREATE TRIGGER supporters_summary_pledge_changed AFTER UPDATE OF status, tier_id ON pledges
    FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.tier_id IS DISTINCT FROM OLD.tier_id)
    EXECUTE FUNCTION supporters_summary_pledge();

-- Keyset pages for each sort of the list; the filters narrow these walks.
CREATE INDEX supporters_by_name ON supporters (lower(display_name), id);
CREATE INDEX supporters_by_lifetime ON supporters (lifetime_minor, id);

-- Searching by part of a name or an email address: trigram indexes serve
-- LIKE '%…%'. pg_trgm is a trusted extension, so the database's owner may
-- create it. Without fastupdate, a new supporter goes straight into the
-- index: a search never reads a long list of pending entries (after a bulk
-- import it took a second until autovacuum merged them).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX supporters_email_trgm ON supporters USING gin (email_normalized gin_trgm_ops)
    WITH (fastupdate = off);
CREATE INDEX supporters_name_trgm ON supporters USING gin (lower(display_name) gin_trgm_ops)
    WITH (fastupdate = off);
