-- Replicas now announce their changes after each commit (src/store/notify.rs)
-- rather than from triggers inside the writing transaction: a transaction
-- that notifies holds a database-wide lock until its commit is flushed, so
-- notifying writers queued behind each other's fsync.
DROP TRIGGER tasks_due ON tasks;
DROP TRIGGER tasks_inserted ON tasks;
DROP TRIGGER outbox_due ON outbox;
DROP TRIGGER outbox_inserted ON outbox;
DROP TRIGGER data_version_changed ON data_version_shards;
DROP FUNCTION patronage_notify_work();
DROP FUNCTION patronage_notify_changed();
