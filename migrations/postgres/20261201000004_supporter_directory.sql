-- The console's supporter list shows each supporter's lifetime value and
-- last payment: sums over their ledger entries, found by this index.
CREATE INDEX ledger_entries_supporter ON ledger_entries (supporter_id, kind);
-- A supporter's page lists the audit entries and emails about them.
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, id);
CREATE INDEX outbox_supporter ON outbox (supporter_id, id);
