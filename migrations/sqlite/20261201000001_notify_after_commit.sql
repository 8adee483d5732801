-- PostgreSQL's migration of this version drops the notification triggers
-- (replicas announce changes after commit instead). SQLite has none. Kept
-- so both backends share version numbers.
SELECT 1;
