-- Hot rows spread over shards (PostgreSQL). Keep in step with migrations/sqlite. Every write bumped one data_version row and
-- every payment added to one ledger_monthly row per month, so concurrent
-- writers queued on those row locks. Writers now pick a shard at random;
-- readers sum the shards.

CREATE TABLE data_version_shards (
    shard   INTEGER PRIMARY KEY,
    version BIGINT  NOT NULL
);
INSERT INTO data_version_shards (shard, version)
SELECT s.n, CASE WHEN s.n = 0 THEN (SELECT version FROM data_version WHERE id = 1) ELSE 0 END
FROM (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4
      UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9
      UNION ALL SELECT 10 UNION ALL SELECT 11 UNION ALL SELECT 12 UNION ALL SELECT 13 UNION ALL SELECT 14
      UNION ALL SELECT 15) s;
DROP TABLE data_version;

CREATE TABLE ledger_monthly_sharded (
    month        TEXT   NOT NULL,
    currency     TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    tier_key     BIGINT NOT NULL,
    shard        INTEGER NOT NULL,
    amount_minor BIGINT NOT NULL,
    entries      BIGINT NOT NULL,
    PRIMARY KEY (month, currency, kind, tier_key, shard)
);
INSERT INTO ledger_monthly_sharded (month, currency, kind, tier_key, shard, amount_minor, entries)
SELECT month, currency, kind, tier_key, 0, amount_minor, entries FROM ledger_monthly;
DROP TABLE ledger_monthly;
ALTER TABLE ledger_monthly_sharded RENAME TO ledger_monthly;
