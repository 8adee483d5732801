-- A task for some (kind, key) waits while another copy of it runs, so two
-- workers never do the same work at once: the claim looks copies up here.
CREATE INDEX tasks_running_key ON tasks (kind, dedupe_key) WHERE status = 'running';
