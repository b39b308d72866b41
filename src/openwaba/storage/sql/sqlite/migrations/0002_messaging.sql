-- The messaging surface: per-number limits, the customer-service window,
-- media and message templates.

ALTER TABLE channels ADD COLUMN throughput REAL;       -- messages/s; NULL means the deployment's default
ALTER TABLE channels ADD COLUMN rate_limits INTEGER;   -- 0 switches the limits off; NULL means the default

-- One user's conversation with a number: the window (when did this user last
-- write?), mark-as-read and the sandbox user's view read it without a scan.
CREATE INDEX messages_user ON messages (channel_id, wa_id, created_at);

-- Uploaded and received media. The bytes live in the data directory under
-- their SHA-256, so identical uploads share one file.
CREATE TABLE media (
    id          TEXT PRIMARY KEY,
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    sha256      TEXT NOT NULL,
    mime_type   TEXT NOT NULL,
    file_size   INTEGER NOT NULL,
    filename    TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX media_sha256 ON media (sha256);

-- Message templates belong to a WABA. A sandbox review decides at creation;
-- the decision takes effect at decided_at, until then the template is PENDING.
CREATE TABLE templates (
    id               TEXT PRIMARY KEY,
    waba_id          TEXT NOT NULL REFERENCES wabas (id),
    name             TEXT NOT NULL,
    language         TEXT NOT NULL,
    category         TEXT NOT NULL,
    components       TEXT NOT NULL,
    decision         TEXT NOT NULL,
    rejected_reason  TEXT,
    decided_at       REAL NOT NULL,
    created_at       REAL NOT NULL,
    UNIQUE (waba_id, name, language)
);
