-- PostgreSQL's migration of this version adds LISTEN/NOTIFY triggers so
-- replicas hear each other's changes. SQLite runs a single replica: nothing
-- to tell. Kept so both backends share version numbers.
SELECT 1;
