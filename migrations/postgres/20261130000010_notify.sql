-- Replicas hear each other (src/store/notify.rs). A notification is queued
-- inside the writing transaction and delivered only if it commits, so a
-- listener never hears of a change it cannot read yet. Identical
-- notifications in one transaction arrive once.

-- Every write the public sees bumps data_version_shards (bump_version!).
CREATE FUNCTION patronage_notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('patronage_changed', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER data_version_changed
    AFTER UPDATE ON data_version_shards
    FOR EACH STATEMENT EXECUTE FUNCTION patronage_notify_changed();

-- Work became due in a queue; the payload names the queue (its table), so
-- later queues reuse this function with triggers of their own.
CREATE FUNCTION patronage_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('patronage_work', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

-- New messages are due at once.
CREATE TRIGGER outbox_inserted
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION patronage_notify_work();

-- A message made due again (an admin's retry). Rescheduling into the future
-- and marking sent stay silent. The second of slack covers a replica's clock
-- running ahead of the database's.
CREATE TRIGGER outbox_due
    AFTER UPDATE OF status, next_attempt_at ON outbox
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND NEW.next_attempt_at <= now() + interval '1 second')
    EXECUTE FUNCTION patronage_notify_work();
