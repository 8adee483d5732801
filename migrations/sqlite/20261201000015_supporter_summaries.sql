-- The supporter summary moves off the supporter's row to a narrow row of
-- its own, as on PostgreSQL (where each payment's update of the wide,
-- heavily indexed supporter row was the cost); one directory query serves
-- both.
CREATE TABLE supporter_summaries (
    supporter_id INTEGER PRIMARY KEY REFERENCES supporters (id) ON DELETE CASCADE,
    lifetime_minor BIGINT NOT NULL DEFAULT 0,
    last_payment_at TEXT,
    pledge_status TEXT,
    pledge_tier_id BIGINT
);
INSERT INTO supporter_summaries (supporter_id, lifetime_minor, last_payment_at, pledge_status, pledge_tier_id)
    SELECT id, lifetime_minor, last_payment_at, pledge_status, pledge_tier_id FROM supporters;
CREATE INDEX supporter_summaries_by_lifetime ON supporter_summaries (lifetime_minor, supporter_id);

-- A column can be dropped only once nothing in the schema names it.
DROP TRIGGER supporters_summary_ledger;
DROP TRIGGER supporters_summary_pledge_new;
DROP TRIGGER supporters_summary_pledge_changed;
DROP INDEX supporters_by_lifetime;
ALTER TABLE supporters DROP COLUMN lifetime_minor;
ALTER TABLE supporters DROP COLUMN last_payment_at;
ALTER TABLE supporters DROP COLUMN pledge_status;
ALTER TABLE supporters DROP COLUMN pledge_tier_id;

-- Every supporter has one, from the start: the directory joins it.
CREATE TRIGGER supporter_summaries_new AFTER INSERT ON supporters
BEGIN
    INSERT INTO supporter_summaries (supporter_id) VALUES (NEW.id);
END;

-- The same rules as before (20261201000009), on the new row.
CREATE TRIGGER supporters_summary_ledger AFTER INSERT ON ledger_entries
WHEN NEW.supporter_id IS NOT NULL AND NEW.kind IN ('payment', 'manual', 'refund', 'dispute')
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
END;

CREATE TRIGGER supporters_summary_pledge_new AFTER INSERT ON pledges
BEGIN
    UPDATE supporter_summaries SET
        pledge_status = (SELECT p.status FROM pledges p WHERE p.supporter_id = NEW.supporter_id ORDER BY
            CASE p.status WHEN 'past_due' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, p.id DESC LIMIT 1),
        pledge_tier_id = (SELECT p.tier_id FROM pledges p WHERE p.supporter_id = NEW.supporter_id
            AND p.status IN ('active', 'past_due') ORDER BY p.id DESC LIMIT 1)
    WHERE supporter_id = NEW.supporter_id;
END;

CREATE TRIGGER supporters_summary_pledge_changed AFTER UPDATE OF status, tier_id ON pledges
WHEN NEW.status IS NOT OLD.status OR NEW.tier_id IS NOT OLD.tier_id
BEGIN
    UPDATE supporter_summaries SET
        pledge_status = (SELECT p.status FROM pledges p WHERE p.supporter_id = NEW.supporter_id ORDER BY
            CASE p.status WHEN 'past_due' THEN 0 WHEN 'active' THEN 1 ELSE 2 END, p.id DESC LIMIT 1),
        pledge_tier_id = (SELECT p.tier_id FROM pledges p WHERE p.supporter_id = NEW.supporter_id
            AND p.status IN ('active', 'past_due') ORDER BY p.id DESC LIMIT 1)
    WHERE supporter_id = NEW.supporter_id;
END;
