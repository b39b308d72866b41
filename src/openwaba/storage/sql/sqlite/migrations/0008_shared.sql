-- Several worker processes may share one database file (`openwaba serve --workers N`).

-- Rate-limit due times, for when the workers must count against the same limits
-- (one process alone keeps them in memory).
CREATE TABLE rate_buckets (
    key  TEXT PRIMARY KEY,
    due  REAL NOT NULL
);

-- Which process holds a delivery's lease (workers renew only their own).
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;

-- A Meta post being ingested is taken until this wall-clock time.
ALTER TABLE meta_inbox ADD COLUMN taken_until REAL;

-- A counter every configuration change moves in the same transaction: workers poll it
-- and drop their cached configuration when it moved (PostgreSQL uses NOTIFY).
INSERT INTO kv (key, value) VALUES ('config.generation', '0');

CREATE TRIGGER wabas_changed AFTER INSERT ON wabas BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER wabas_updated AFTER UPDATE ON wabas BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER wabas_deleted AFTER DELETE ON wabas BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER channels_changed AFTER INSERT ON channels BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER channels_updated AFTER UPDATE ON channels BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER channels_deleted AFTER DELETE ON channels BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER api_keys_changed AFTER INSERT ON api_keys BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER api_keys_updated AFTER UPDATE ON api_keys BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER sandbox_users_changed AFTER INSERT ON sandbox_users BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER sandbox_users_updated AFTER UPDATE ON sandbox_users BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER sandbox_users_deleted AFTER DELETE ON sandbox_users BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER destinations_changed AFTER INSERT ON destinations BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER destinations_updated AFTER UPDATE ON destinations BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER destinations_deleted AFTER DELETE ON destinations BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER meta_links_changed AFTER INSERT ON meta_links BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER meta_links_updated AFTER UPDATE ON meta_links BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER meta_links_deleted AFTER DELETE ON meta_links BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER templates_changed AFTER INSERT ON templates BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER templates_updated AFTER UPDATE ON templates BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER templates_deleted AFTER DELETE ON templates BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
-- Scenarios and profiles live in kv.
CREATE TRIGGER kv_changed AFTER INSERT ON kv WHEN NEW.key <> 'config.generation' BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
CREATE TRIGGER kv_updated AFTER UPDATE ON kv WHEN NEW.key <> 'config.generation' BEGIN
    UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = 'config.generation'; END;
