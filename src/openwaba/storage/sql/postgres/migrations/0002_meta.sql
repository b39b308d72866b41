-- Channels on Meta's Cloud API: the Meta phone-number id they send from, with
-- the credentials to call Graph and check Meta's webhook signatures.
CREATE TABLE meta_links (
    channel_id      bigint PRIMARY KEY REFERENCES channels (id),
    phone_number_id text NOT NULL UNIQUE,
    waba_id         text,
    access_token    text NOT NULL,
    app_secret      text NOT NULL
);

-- Meta's webhook posts, committed as received before Meta gets its 200 and
-- deleted once ingested.
CREATE TABLE meta_inbox (
    id          bigserial PRIMARY KEY,
    received_at double precision NOT NULL,
    body        bytea NOT NULL
);
