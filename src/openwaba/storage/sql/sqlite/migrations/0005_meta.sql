-- Channels on Meta's Cloud API: the Meta phone-number id they send from, with
-- the credentials to call Graph and check Meta's webhook signatures.
CREATE TABLE meta_links (
    channel_id      INTEGER PRIMARY KEY REFERENCES channels (id),
    phone_number_id TEXT NOT NULL UNIQUE,
    waba_id         TEXT,
    access_token    TEXT NOT NULL,
    app_secret      TEXT NOT NULL
);

-- Meta's webhook posts, committed as received before Meta gets its 200 and
-- deleted once ingested.
CREATE TABLE meta_inbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    body        BLOB NOT NULL
);
