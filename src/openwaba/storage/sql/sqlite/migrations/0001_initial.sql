-- The initial schema. Times are Unix seconds (REAL); JSON is stored as TEXT.
CREATE TABLE wabas (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  REAL NOT NULL
);

CREATE TABLE channels (
    id               INTEGER PRIMARY KEY,
    waba_id          TEXT NOT NULL REFERENCES wabas (id),
    phone_number     TEXT NOT NULL UNIQUE,
    phone_number_id  TEXT NOT NULL UNIQUE,
    format           TEXT NOT NULL,  -- cloud | on_premise: the webhook payload format
    connector        TEXT NOT NULL,  -- sandbox (meta comes later)
    mode             TEXT NOT NULL,  -- sandbox | production: production enforces Cloud URL rules
    multi_webhook    INTEGER NOT NULL DEFAULT 0,  -- multi-webhook enabled
    fanout           TEXT NOT NULL DEFAULT 'after_main',  -- after_main | independent
    retry_horizon    REAL,  -- seconds; NULL means the deployment's default
    created_at       REAL NOT NULL
);

CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    hint        TEXT NOT NULL,  -- the first characters, to tell keys apart in listings
    created_at  REAL NOT NULL
);
CREATE INDEX api_keys_channel ON api_keys (channel_id);

CREATE TABLE sandbox_users (
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    wa_id       TEXT NOT NULL,
    name        TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    PRIMARY KEY (channel_id, wa_id)
);

-- Webhook destinations. scope is 'channel:<id>' (kinds main, multi) or 'waba:<id>' (kind waba).
CREATE TABLE destinations (
    id            INTEGER PRIMARY KEY,
    scope         TEXT NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    url           TEXT NOT NULL,
    headers       TEXT NOT NULL,
    override_all  INTEGER NOT NULL DEFAULT 0,
    position      INTEGER NOT NULL,
    removed       INTEGER NOT NULL DEFAULT 0,  -- kept, so the delivery log can still name it
    disabled      INTEGER NOT NULL DEFAULT 0,  -- the receiver answered 410 Gone
    fifo          INTEGER NOT NULL DEFAULT 0,  -- one conversation's events strictly one after another
    secrets       TEXT NOT NULL DEFAULT '[]',  -- Standard Webhooks secrets, newest first
    app_secret    TEXT,                        -- Meta app secret for X-Hub-Signature-256
    UNIQUE (scope, kind, name)
);

-- Messages in both directions. Outbound rows wait with dispatched = 0 until the
-- connector has taken them, so a crash between accept and hand-over loses nothing.
CREATE TABLE messages (
    wamid                    TEXT PRIMARY KEY,
    channel_id               INTEGER NOT NULL REFERENCES channels (id),
    direction                TEXT NOT NULL,
    wa_id                    TEXT NOT NULL,
    type                     TEXT NOT NULL,
    content                  TEXT NOT NULL,
    context_message_id       TEXT,
    biz_opaque_callback_data TEXT,
    status                   TEXT NOT NULL,
    created_at               REAL NOT NULL,
    dispatched               INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_undispatched ON messages (created_at) WHERE dispatched = 0;

-- One row per webhook-worthy item (message, status, error), rendered once.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    channel_id  INTEGER NOT NULL REFERENCES channels (id),
    kind        TEXT NOT NULL,
    wamid       TEXT,
    order_key   TEXT NOT NULL,  -- channel and user: events of one conversation keep their order
    created_at  REAL NOT NULL,
    body        BLOB NOT NULL
);
CREATE INDEX events_channel_time ON events (channel_id, created_at);

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL REFERENCES events (id),
    destination_id   INTEGER NOT NULL REFERENCES destinations (id),
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    next_attempt_at  REAL,
    deadline         REAL NOT NULL,  -- the retry horizon: no attempt after this
    order_key        TEXT NOT NULL,  -- the event's conversation (channel and user)
    paused           INTEGER NOT NULL DEFAULT 0,  -- postponed by the circuit breaker
    retry_base       INTEGER NOT NULL DEFAULT 0,  -- attempts before the last replay: the schedule restarts
    lease_until      REAL,
    last_status      INTEGER,
    last_error       TEXT,
    parent_id        INTEGER REFERENCES deliveries (id),  -- held until this one answers 200
    UNIQUE (event_id, destination_id)
);
CREATE INDEX deliveries_parent ON deliveries (parent_id) WHERE state = 'held';
CREATE INDEX deliveries_fifo ON deliveries (destination_id, order_key, id) WHERE state IN ('pending', 'held');
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_deadline ON deliveries (deadline) WHERE state = 'pending';
CREATE INDEX deliveries_pending_age ON deliveries (created_at) WHERE state = 'pending';

CREATE TABLE attempts (
    id                INTEGER PRIMARY KEY,
    delivery_id       INTEGER NOT NULL REFERENCES deliveries (id),
    started_at        REAL NOT NULL,
    duration_ms       REAL NOT NULL,
    status_code       INTEGER,
    error             TEXT,
    response_excerpt  TEXT NOT NULL
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- Operational events: things an operator should know about (a destination disabled, ...).
CREATE TABLE notices (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    channel_id  INTEGER,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL
);

CREATE TABLE kv (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
