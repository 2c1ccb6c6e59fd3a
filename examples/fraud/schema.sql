-- The fraud example (examples/fraud/README.md): load with `tarn sql -f examples/fraud/schema.sql`.

-- Entities, written with `tarn upsert TABLE -f TABLE.jsonl`.
CREATE TABLE accounts (
  account_id TEXT PRIMARY KEY,
  owner      TEXT,
  country    TEXT,
  opened_at  TIMESTAMP,
  risk       DOUBLE
);
CREATE TABLE cards (
  card_id    TEXT PRIMARY KEY,
  account_id TEXT,
  device_id  TEXT,       -- the device the card was enrolled on
  bin        TEXT,
  issued_at  TIMESTAMP,
  blocked    BOOLEAN
);
CREATE TABLE devices (
  device_id   TEXT PRIMARY KEY,
  account_id  TEXT,      -- the account that registered it
  platform    TEXT,
  fingerprint VECTOR(16),
  allowlisted BOOLEAN    -- shared devices (shop kiosks): never evidence of a ring
);
CREATE TABLE merchants (
  merchant_id TEXT PRIMARY KEY,
  name        TEXT,
  category    TEXT,
  country     TEXT
);

-- Card transactions, appended with `tarn ingest transactions transactions.jsonl`. Each event is
-- kept on the shard of its card (partition), which also keeps the card's last 5 events in
-- memory (recent), and feeds the four views below on the shards of their keys.
CREATE STREAM transactions (
  ts          TIMESTAMP,
  card_id     TEXT,
  account_id  TEXT,
  device_id   TEXT,
  ip          TEXT,
  merchant_id TEXT,
  amount      DOUBLE
) WITH (event_time = 'ts', partition = 'card_id', retention = '1 day', recent = 5);

-- Live features over the last hour, per card, account, device and IP.
CREATE MATERIALIZED VIEW card_1h WITH (window = '1 hour', bucket = '1 minute') AS
  SELECT card_id, count(*) AS txns, sum(amount) AS spend, max(amount) AS max_amount,
         count(DISTINCT merchant_id) AS merchants, last(ip) AS last_ip
  FROM transactions GROUP BY card_id;
CREATE MATERIALIZED VIEW account_1h WITH (window = '1 hour', bucket = '1 minute') AS
  SELECT account_id, count(*) AS txns, sum(amount) AS spend, max(amount) AS max_amount,
         count(DISTINCT card_id) AS cards, last(device_id) AS last_device
  FROM transactions GROUP BY account_id;
CREATE MATERIALIZED VIEW device_1h WITH (window = '1 hour', bucket = '1 minute') AS
  SELECT device_id, count(*) AS txns, sum(amount) AS spend, max(amount) AS max_amount,
         count(DISTINCT card_id) AS cards, last(ip) AS last_ip
  FROM transactions GROUP BY device_id;
CREATE MATERIALIZED VIEW ip_1h WITH (window = '1 hour', bucket = '1 minute') AS
  SELECT ip, count(*) AS txns, sum(amount) AS spend, max(amount) AS max_amount,
         count(DISTINCT card_id) AS cards, last(card_id) AS last_card
  FROM transactions GROUP BY ip;

-- Devices by fingerprint: a ring's devices are near-identical.
CREATE INDEX device_fp ON devices USING hnsw (fingerprint) WITH (metric = 'l2');

-- Everything one decision on a card payment reads, in one round trip:
--   the card, the account behind it (two hops: card -> account -> its features), the live
--   features of card, account, device and IP, the card's last 5 payments and their merchants,
--   the devices most like this one (not allowlisted) and, for each of those, its features and
--   the account behind it.
CREATE CONTEXT fraud_check (card_id TEXT, device_id TEXT, ip TEXT) AS SELECT
  row(cards, card_id)                                                AS card,
  features(card_1h, card_id)                                         AS card_f,
  row(accounts, card.account_id)                                     AS account,
  features(account_1h, account.account_id)                           AS account_f,
  features(device_1h, device_id)                                     AS device_f,
  features(ip_1h, ip)                                                AS ip_f,
  recent(transactions, card_id, 5,
         columns => (ts, amount, merchant_id, device_id, ip))        AS last_5,
  row(merchants, last_5.merchant_id)                                 AS recent_merchants,
  knn(device_fp, like => device_id, k => 5, filter => 'allowlisted = false',
      columns => (device_id, account_id, platform))                  AS similar_devices,
  features(device_1h, similar_devices.device_id)                     AS similar_device_f,
  row(accounts, similar_devices.account_id,
      columns => (account_id, owner, opened_at, risk))               AS similar_accounts;
