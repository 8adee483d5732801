-- The task claim takes due tasks in id order. Through `tasks_by_status`
-- (status, id) the two statuses are two ranges, so each claim read every
-- pending task and sorted them to take the first few: 4.6 ms a claim with
-- 5,000 fee tasks queued (pg_stat_statements, benches/webhooks.sh). This
-- index is walked in id order and stops at the limit.
CREATE INDEX tasks_open ON tasks (id) WHERE status IN ('pending', 'running');
