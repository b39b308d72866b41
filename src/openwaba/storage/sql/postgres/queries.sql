-- Named queries for the PostgreSQL storage. `-- name: x` starts query `x`.
-- Parameters are positional ($1, $2, ...), as asyncpg takes them.

-- name: insert_waba
INSERT INTO wabas (id, name, created_at) VALUES ($1, $2, $3);

-- name: select_wabas
SELECT id, name FROM wabas ORDER BY created_at;

-- name: insert_channel
INSERT INTO channels (waba_id, phone_number, phone_number_id, format, connector, mode, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id;

-- name: select_channels
SELECT id, waba_id, phone_number, phone_number_id, format, connector, mode FROM channels ORDER BY id;

-- name: select_channel_by_key
SELECT c.id, c.waba_id, c.phone_number, c.phone_number_id, c.format, c.connector, c.mode
FROM api_keys k JOIN channels c ON c.id = k.channel_id
WHERE k.key_hash = $1;

-- name: select_api_keys
SELECT hint, created_at FROM api_keys WHERE channel_id = $1 ORDER BY created_at;

-- name: select_channel_flags
SELECT multi_webhook, fanout FROM channels WHERE id = $1;

-- name: update_webhook_flags
UPDATE channels SET multi_webhook = coalesce($1, multi_webhook), fanout = coalesce($2, fanout) WHERE id = $3;

-- name: delete_api_keys
DELETE FROM api_keys WHERE channel_id = $1;

-- name: insert_api_key
INSERT INTO api_keys (key_hash, channel_id, hint, created_at) VALUES ($1, $2, $3, $4);

-- name: insert_sandbox_user
INSERT INTO sandbox_users (channel_id, wa_id, name, user_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING;

-- name: select_sandbox_users
SELECT wa_id, name, user_id FROM sandbox_users WHERE channel_id = $1 ORDER BY wa_id COLLATE "C";

-- name: lock_destination_scope
-- Serialises the position counter of a scope across nodes (released at commit).
SELECT pg_advisory_xact_lock(hashtext('openwaba.destinations:' || $1));

-- name: upsert_destination
INSERT INTO destinations (scope, kind, name, url, headers, override_all, position, secrets, app_secret, fifo)
VALUES ($1, $2, $3, $4, $5, $6,
        (SELECT coalesce(max(position), 0) + 1 FROM destinations WHERE scope = $1), $7, $8, $9)
ON CONFLICT (scope, kind, name) DO UPDATE
SET url = excluded.url, headers = excluded.headers, override_all = excluded.override_all, removed = false,
    disabled = false, secrets = excluded.secrets, app_secret = excluded.app_secret, fifo = excluded.fifo,
    position = CASE WHEN destinations.removed THEN excluded.position ELSE destinations.position END;

-- name: update_destination
UPDATE destinations SET url = coalesce($4, url), headers = coalesce($5, headers),
       secrets = coalesce($6, secrets), app_secret = coalesce($7, app_secret),
       fifo = coalesce($8, fifo), disabled = false
WHERE scope = $1 AND kind = $2 AND name = $3 AND NOT removed;

-- name: select_destination_id
SELECT id FROM destinations WHERE scope = $1 AND kind = $2 AND name = $3 AND NOT removed;

-- name: dead_letter_destination
UPDATE deliveries SET state = 'dead', next_attempt_at = NULL, lease_until = NULL,
       last_error = 'destination removed'
WHERE destination_id = $1 AND state IN ('pending', 'held');

-- name: delete_destination
UPDATE destinations SET removed = true WHERE id = $1;

-- name: select_destinations
SELECT id, kind, name, url, headers, override_all, secrets, app_secret, fifo
FROM destinations WHERE scope = $1 AND NOT removed ORDER BY position;

-- name: insert_message
INSERT INTO messages (wamid, channel_id, direction, wa_id, type, content, context_message_id,
                      biz_opaque_callback_data, status, created_at, dispatched, handover_lease, handover_owner)
VALUES ($1, $2, 'out', $3, $4, $5, $6, $7, 'accepted', $8, false, $9, $10);

-- name: insert_inbound_message
-- A user's message; Meta may post it twice, the first copy wins.
INSERT INTO messages (wamid, channel_id, direction, wa_id, type, content, context_message_id,
                      biz_opaque_callback_data, status, created_at, dispatched)
VALUES ($1, $2, 'in', $3, $4, $5, $6, NULL, 'received', $7, true)
ON CONFLICT (wamid) DO NOTHING;

-- name: claim_undispatched
-- Accepted messages whose hand-over lease has expired (their node stopped before handing them over).
UPDATE messages m SET handover_lease = $3, handover_owner = $4
FROM (SELECT wamid FROM messages
      WHERE NOT dispatched AND (handover_lease IS NULL OR handover_lease < $1)
      ORDER BY created_at LIMIT $2
      FOR UPDATE SKIP LOCKED) due
WHERE m.wamid = due.wamid
RETURNING m.wamid, m.channel_id, m.wa_id, m.type, m.content, m.context_message_id, m.biz_opaque_callback_data,
          m.created_at;

-- name: mark_dispatched
UPDATE messages SET dispatched = true, handover_lease = NULL, handover_owner = NULL WHERE wamid = ANY($1::text[]);

-- name: release_own_leases
-- At start-up: what this node's killed predecessor (the same node id) held is free again.
WITH deliveries_released AS (
    UPDATE deliveries SET lease_until = NULL, lease_owner = NULL WHERE lease_owner = $1 AND state = 'pending'
)
UPDATE messages SET handover_lease = NULL, handover_owner = NULL WHERE handover_owner = $1 AND NOT dispatched;

-- name: try_lock_node
SELECT pg_try_advisory_lock(hashtext('openwaba.node:' || $1));

-- name: update_message_status
-- A status event: its time is kept (the conversation shows it once it has happened), and the
-- latest status only moves forward: a `delivered` posted after `read` (out of order) leaves `read`.
UPDATE messages SET
    status = CASE WHEN (CASE $1::text WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'failed' THEN 4 ELSE 0 END) > (CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'failed' THEN 4 ELSE 0 END) THEN $1::text ELSE status END,
    sent_at = CASE WHEN $1::text = 'sent' THEN LEAST(COALESCE(sent_at, $2::double precision), $2::double precision) ELSE sent_at END,
    delivered_at = CASE WHEN $1::text = 'delivered' THEN LEAST(COALESCE(delivered_at, $2::double precision), $2::double precision) ELSE delivered_at END,
    read_at = CASE WHEN $1::text = 'read' THEN LEAST(COALESCE(read_at, $2::double precision), $2::double precision) ELSE read_at END,
    failed_at = CASE WHEN $1::text = 'failed' THEN LEAST(COALESCE(failed_at, $2::double precision), $2::double precision) ELSE failed_at END
WHERE wamid = $3;

-- name: insert_event
INSERT INTO events (id, channel_id, kind, wamid, order_key, created_at, body, injected)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO NOTHING;

-- name: insert_delivery
-- Inserts nothing when the destination was removed after routing was decided.
INSERT INTO deliveries (event_id, destination_id, state, created_at, next_attempt_at, deadline, parent_id, order_key)
SELECT $1, id, $2, $3, $4, $5, $6, $7
FROM destinations WHERE id = $8 AND NOT removed AND NOT disabled
RETURNING id;

-- name: expire_overdue
-- Deliveries whose horizon passed before they could be attempted are dead-lettered
-- without an attempt. Rows another node is working on are left to it.
UPDATE deliveries d
SET state = 'dead', next_attempt_at = NULL, lease_until = NULL,
    last_error = coalesce(d.last_error || '; ', '') || 'the retry horizon passed before the next attempt'
FROM (SELECT id FROM deliveries
      WHERE state = 'pending' AND deadline < $2 AND (lease_until IS NULL OR lease_until < $1)
      FOR UPDATE SKIP LOCKED) overdue
WHERE d.id = overdue.id
RETURNING d.id;

-- name: dead_letter_children_of
UPDATE deliveries SET state = 'dead', last_error = 'the main webhook never answered 200'
WHERE parent_id = ANY($1::bigint[]) AND state = 'held';

-- name: claim_due
-- Locks the due rows it takes and skips rows other nodes are taking, so two
-- nodes never lease one delivery; the lease then keeps it for this node.
WITH due AS (
    SELECT d.id FROM deliveries d JOIN destinations t ON t.id = d.destination_id
    WHERE d.state = 'pending' AND d.next_attempt_at <= $1
      AND (d.lease_until IS NULL OR d.lease_until < $1)
      -- FIFO destinations: wait until the conversation's earlier events are delivered or dead
      AND (NOT t.fifo OR NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.destination_id = d.destination_id AND p.order_key = d.order_key
            AND p.id < d.id AND p.state IN ('pending', 'held')))
    ORDER BY d.next_attempt_at
    LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries d SET lease_until = $3, lease_owner = $4
FROM due, events e, destinations t
WHERE d.id = due.id AND e.id = d.event_id AND t.id = d.destination_id
RETURNING d.id, d.event_id, e.order_key, e.created_at, d.deadline, d.attempts - d.retry_base, d.destination_id,
          t.url, t.headers, t.secrets, t.app_secret, e.body, d.next_attempt_at;

-- name: renew_leases
UPDATE deliveries SET lease_until = $2
WHERE id = ANY($1::bigint[]) AND lease_owner = $3 AND state = 'pending';

-- name: defer_delivery
-- May lie past the deadline: expire_overdue then dead-letters it without an attempt.
UPDATE deliveries SET next_attempt_at = $1, lease_until = NULL, paused = true WHERE id = ANY($2::bigint[]);

-- name: undefer_destination
-- Only what the breaker postponed: a delivery waiting for a receiver's Retry-After keeps waiting.
UPDATE deliveries SET next_attempt_at = $1, paused = false
WHERE destination_id = $2 AND state = 'pending' AND paused AND next_attempt_at > $1;

-- name: next_due_at
SELECT min(next_attempt_at) FROM deliveries
WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < $1);

-- name: insert_attempt
INSERT INTO attempts (delivery_id, started_at, duration_ms, status_code, error, response_excerpt, headers)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: finish_attempt
UPDATE deliveries
SET state = $1, attempts = attempts + 1, next_attempt_at = $2, lease_until = NULL, lease_owner = NULL,
    paused = false, last_status = $3, last_error = $4
-- A node that lost its lease (frozen longer than it) records its attempt but decides nothing:
-- the delivery belongs to whoever holds the lease now.
WHERE id = $5 AND state = 'pending' AND lease_owner = $6;

-- name: dead_letter_orphans
-- Deliveries held for a primary delivery of this destination that will never succeed now.
UPDATE deliveries SET state = 'dead', last_error = 'the main webhook never answered 200'
WHERE state = 'held' AND parent_id IN (SELECT id FROM deliveries WHERE destination_id = $1 AND state = 'dead');

-- name: release_children
UPDATE deliveries SET state = 'pending', next_attempt_at = $1 WHERE parent_id = $2 AND state = 'held';

-- name: disable_destination
UPDATE destinations SET disabled = true WHERE id = $1;

-- name: dead_letter_disabled
UPDATE deliveries SET state = 'dead', next_attempt_at = NULL, lease_until = NULL,
       last_error = 'destination disabled: the receiver answered 410 Gone'
WHERE destination_id = $1 AND state IN ('pending', 'held') AND id <> $2;

-- name: insert_notice
INSERT INTO notices (at, channel_id, kind, detail) VALUES ($1, $2, $3, $4);

-- name: select_destination_scope
SELECT scope, name, url FROM destinations WHERE id = $1;

-- name: select_notices
SELECT at, kind, detail FROM notices WHERE channel_id = $1 ORDER BY id DESC LIMIT $2;

-- name: select_channel_horizon
SELECT retry_horizon FROM channels WHERE id = $1;

-- name: update_channel_horizon
UPDATE channels SET retry_horizon = $1 WHERE id = $2;

-- name: select_deliveries
-- $1 channel, $2 state, $3 destination name, $4 event id, $5 delivery id, $6 since, $7 until,
-- $8 before id, $9 limit
SELECT d.id, d.event_id, e.kind, e.wamid, t.kind, t.name, t.url, d.state, d.attempts, d.created_at,
       d.next_attempt_at, d.deadline, d.last_status, d.last_error, e.injected
FROM deliveries d
JOIN events e ON e.id = d.event_id
JOIN destinations t ON t.id = d.destination_id
WHERE e.channel_id = $1
  AND ($2::text IS NULL OR d.state = $2)
  AND ($3::text IS NULL OR t.name = $3)
  AND ($4::text IS NULL OR d.event_id = $4)
  AND ($5::bigint IS NULL OR d.id = $5)
  AND ($6::double precision IS NULL OR d.created_at >= $6)
  AND ($7::double precision IS NULL OR d.created_at < $7)
  AND ($8::bigint IS NULL OR d.id < $8)
ORDER BY d.id DESC
LIMIT $9;

-- name: select_attempts
SELECT started_at, duration_ms, status_code, error, response_excerpt, headers
FROM attempts WHERE delivery_id = $1 ORDER BY id;

-- name: select_event_body
SELECT body FROM events WHERE id = $1;

-- name: replay_deliveries
-- $1..$7 as select_deliveries' filter, $8 now, $9 deadline
UPDATE deliveries
SET state = 'pending', next_attempt_at = $8, deadline = $9, lease_until = NULL, lease_owner = NULL,
    parent_id = NULL, paused = false, retry_base = attempts
WHERE id IN (
    SELECT d.id FROM deliveries d
    JOIN events e ON e.id = d.event_id
    JOIN destinations t ON t.id = d.destination_id
    WHERE e.channel_id = $1 AND NOT t.removed AND NOT t.disabled
      AND ($2::text IS NULL OR d.state = $2)
      AND ($3::text IS NULL OR t.name = $3)
      AND ($4::text IS NULL OR d.event_id = $4)
      AND ($5::bigint IS NULL OR d.id = $5)
      AND ($6::double precision IS NULL OR d.created_at >= $6)
      AND ($7::double precision IS NULL OR d.created_at < $7)
      AND d.state <> 'pending'
);

-- name: queue_stats
SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),
       (SELECT min(created_at) FROM deliveries WHERE state = 'pending');

-- name: get_kv
SELECT value FROM kv WHERE key = $1;

-- name: set_kv
INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: select_channel_limits
SELECT throughput, rate_limits FROM channels WHERE id = $1;

-- name: update_channel_limits
UPDATE channels SET throughput = $1, rate_limits = $2 WHERE id = $3;

-- name: admit
SELECT refused, due FROM openwaba_admit($1::text[], $2::double precision[], $3::integer[], $4, $5);

-- name: prune_rate_buckets
DELETE FROM rate_buckets WHERE due < $1;

-- name: last_inbound_at
SELECT max(created_at) FROM messages WHERE channel_id = $1 AND wa_id = $2 AND direction = 'in';

-- name: select_inbound
SELECT wa_id, created_at FROM messages WHERE wamid = $1 AND channel_id = $2 AND direction = 'in';

-- name: mark_read_until
-- Reading a message reads everything the user sent before it, as on WhatsApp.
UPDATE messages SET status = 'read'
WHERE channel_id = $1 AND wa_id = $2 AND direction = 'in' AND created_at <= $3 AND status <> 'read';

-- name: select_conversation
-- The status as of $4 (NULL: the latest known), since statuses are stored before they happen.
SELECT wamid, direction, type, content, context_message_id,
       CASE WHEN $4::double precision IS NULL THEN status
            WHEN failed_at <= $4::double precision THEN 'failed'
            WHEN read_at <= $4::double precision THEN 'read'
            WHEN delivered_at <= $4::double precision THEN 'delivered'
            WHEN sent_at <= $4::double precision THEN 'sent'
            WHEN COALESCE(sent_at, delivered_at, read_at, failed_at) IS NOT NULL THEN 'accepted'
            ELSE status END, created_at
FROM messages WHERE channel_id = $1 AND wa_id = $2
ORDER BY created_at DESC, seq DESC LIMIT $3;

-- name: select_conversation_message
SELECT wamid, direction, type, content, context_message_id, status, created_at
FROM messages WHERE channel_id = $1 AND wa_id = $2 AND wamid = $3;

-- name: insert_media
INSERT INTO media (id, channel_id, sha256, mime_type, file_size, filename, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: select_media
SELECT id, channel_id, sha256, mime_type, file_size, filename, created_at FROM media WHERE id = $1 AND channel_id = $2;

-- name: delete_media
DELETE FROM media WHERE id = $1 AND channel_id = $2 RETURNING sha256;

-- name: count_media_sha256
SELECT count(*) FROM media WHERE sha256 = $1;

-- name: insert_template
INSERT INTO templates (id, waba_id, name, language, category, components, decision, rejected_reason,
                       decided_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);

-- name: select_templates
SELECT id, name, language, category, components, decision, rejected_reason, decided_at, created_at
FROM templates WHERE waba_id = $1 ORDER BY name COLLATE "C", language COLLATE "C";  -- byte order, as SQLite

-- name: select_template
SELECT id, name, language, category, components, decision, rejected_reason, decided_at, created_at
FROM templates WHERE waba_id = $1 AND name = $2 AND language = $3;

-- name: delete_templates
DELETE FROM templates WHERE waba_id = $1 AND name = $2
RETURNING id, name, language, category, components, decision, rejected_reason, decided_at, created_at;

-- name: withdraw_deliveries
-- Only an event no receiver has seen yet can be withdrawn.
DELETE FROM deliveries
WHERE event_id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = $1 AND attempts > 0);

-- name: withdraw_event
DELETE FROM events WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = $1);

-- name: lock_migrations
-- One node migrates at a time; the others wait, then find nothing left to do.
SELECT pg_advisory_lock(hashtext('openwaba.migrations'));

-- name: unlock_migrations
SELECT pg_advisory_unlock(hashtext('openwaba.migrations'));

-- name: create_migrations_table
CREATE TABLE IF NOT EXISTS openwaba_migrations (
    version     integer PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- name: applied_migrations
SELECT version FROM openwaba_migrations ORDER BY version;

-- name: record_migration
INSERT INTO openwaba_migrations (version) VALUES ($1);

-- name: lock_named
SELECT pg_advisory_lock(hashtext('openwaba.' || $1));

-- name: unlock_named
SELECT pg_advisory_unlock(hashtext('openwaba.' || $1));

-- name: notify
SELECT pg_notify($1, '');

-- name: commit_without_waiting
-- For transactions a crash may undo harmlessly (a lease, an expiry that the next
-- claim redoes): their commit does not wait for the WAL flush.
SET LOCAL synchronous_commit TO OFF;

-- name: insert_message_handed_over
-- A message the caller hands over itself, at once: no lease, never reclaimed. Until
-- it is settled it records that a hand-over started (its outcome unknown after a crash).
INSERT INTO messages (wamid, channel_id, direction, wa_id, type, content, context_message_id,
                      biz_opaque_callback_data, status, created_at, dispatched)
VALUES ($1, $2, 'out', $3, $4, $5, $6, $7, 'sending', $8, true);

-- name: settle_outbound
-- A message handed over synchronously gets the id the network gave it.
UPDATE messages SET wamid = $2, status = 'accepted' WHERE wamid = $1;

-- name: delete_outbound
-- The network refused the message (or its answer never came): it was not accepted.
DELETE FROM messages WHERE wamid = $1 AND direction = 'out';

-- name: select_meta_links
SELECT channel_id, phone_number_id, waba_id, access_token, app_secret FROM meta_links ORDER BY channel_id;

-- name: upsert_meta_link
INSERT INTO meta_links (channel_id, phone_number_id, waba_id, access_token, app_secret)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (channel_id) DO UPDATE SET phone_number_id = excluded.phone_number_id, waba_id = excluded.waba_id,
    access_token = excluded.access_token, app_secret = excluded.app_secret;

-- name: update_channel_connector
UPDATE channels SET connector = $1 WHERE id = $2;

-- name: insert_meta_inbox
INSERT INTO meta_inbox (received_at, body) VALUES ($1, $2);

-- name: claim_meta_inbox
-- Nodes share the inbox: each takes rows no other node holds (held until its transaction ends).
SELECT id, body, received_at FROM meta_inbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED;

-- name: delete_meta_inbox
DELETE FROM meta_inbox WHERE id = ANY($1::bigint[]);

