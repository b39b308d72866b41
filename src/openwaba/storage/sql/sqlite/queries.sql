-- Named queries for the SQLite storage. `-- name: x` starts query `x`.

-- name: insert_waba
INSERT INTO wabas (id, name, created_at) VALUES (?, ?, ?);

-- name: select_wabas
SELECT id, name FROM wabas ORDER BY created_at;

-- name: insert_channel
INSERT INTO channels (waba_id, phone_number, phone_number_id, format, connector, mode, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
RETURNING id;

-- name: select_channels
SELECT id, waba_id, phone_number, phone_number_id, format, connector, mode FROM channels ORDER BY id;

-- name: select_channel_by_key
SELECT c.id, c.waba_id, c.phone_number, c.phone_number_id, c.format, c.connector, c.mode
FROM api_keys k JOIN channels c ON c.id = k.channel_id
WHERE k.key_hash = ?;

-- name: select_api_keys
SELECT hint, created_at FROM api_keys WHERE channel_id = ? ORDER BY created_at;

-- name: select_channel_flags
SELECT multi_webhook, fanout FROM channels WHERE id = ?;

-- name: update_multi_webhook
UPDATE channels SET multi_webhook = ? WHERE id = ?;

-- name: update_fanout
UPDATE channels SET fanout = ? WHERE id = ?;

-- name: delete_api_keys
DELETE FROM api_keys WHERE channel_id = ?;

-- name: insert_api_key
INSERT INTO api_keys (key_hash, channel_id, hint, created_at) VALUES (?, ?, ?, ?);

-- name: insert_sandbox_user
INSERT OR IGNORE INTO sandbox_users (channel_id, wa_id, name, user_id) VALUES (?, ?, ?, ?);

-- name: select_sandbox_users
SELECT wa_id, name, user_id FROM sandbox_users WHERE channel_id = ? ORDER BY wa_id;

-- name: upsert_destination
INSERT INTO destinations (scope, kind, name, url, headers, override_all, position, secrets, app_secret, fifo)
VALUES (:scope, :kind, :name, :url, :headers, :override_all,
        (SELECT coalesce(max(position), 0) + 1 FROM destinations WHERE scope = :scope), :secrets, :app_secret, :fifo)
ON CONFLICT (scope, kind, name) DO UPDATE
SET url = excluded.url, headers = excluded.headers, override_all = excluded.override_all, removed = 0,
    disabled = 0, secrets = excluded.secrets, app_secret = excluded.app_secret, fifo = excluded.fifo,
    position = CASE WHEN destinations.removed THEN excluded.position ELSE destinations.position END;

-- name: update_destination
UPDATE destinations SET url = coalesce(:url, url), headers = coalesce(:headers, headers),
       secrets = coalesce(:secrets, secrets), app_secret = coalesce(:app_secret, app_secret),
       fifo = coalesce(:fifo, fifo), disabled = 0
WHERE scope = :scope AND kind = :kind AND name = :name AND removed = 0;

-- name: select_destination_id
SELECT id FROM destinations WHERE scope = ? AND kind = ? AND name = ? AND removed = 0;

-- name: dead_letter_destination
UPDATE deliveries SET state = 'dead', next_attempt_at = NULL, lease_until = NULL,
       last_error = 'destination removed'
WHERE destination_id = ? AND state IN ('pending', 'held');

-- name: delete_destination
UPDATE destinations SET removed = 1 WHERE id = ?;

-- name: select_destinations
SELECT id, kind, name, url, headers, override_all, secrets, app_secret, fifo
FROM destinations WHERE scope = ? AND removed = 0 ORDER BY position;

-- name: insert_message
INSERT INTO messages (wamid, channel_id, direction, wa_id, type, content, context_message_id,
                      biz_opaque_callback_data, status, created_at, dispatched, handover_lease)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_inbound_message
-- A user's message; Meta may post it twice, the first copy wins.
INSERT OR IGNORE INTO messages (wamid, channel_id, direction, wa_id, type, content, context_message_id,
                                biz_opaque_callback_data, status, created_at, dispatched)
VALUES (?, ?, 'in', ?, ?, ?, ?, NULL, 'received', ?, 1);

-- name: claim_undispatched
-- Accepted messages whose hand-over lease has expired (or was released at start-up).
UPDATE messages SET handover_lease = :lease_until
WHERE wamid IN (
    SELECT wamid FROM messages
    WHERE dispatched = 0 AND (handover_lease IS NULL OR handover_lease < :now)
    ORDER BY created_at LIMIT :limit
)
RETURNING wamid, channel_id, wa_id, type, content, context_message_id, biz_opaque_callback_data, created_at;

-- name: mark_dispatched
UPDATE messages SET dispatched = 1, handover_lease = NULL WHERE wamid = ?;

-- name: release_handover_leases
UPDATE messages SET handover_lease = NULL WHERE dispatched = 0 AND handover_lease IS NOT NULL;

-- name: renew_leases
UPDATE deliveries SET lease_until = ?
WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending' AND lease_until IS NOT NULL
  AND lease_owner = ?;

-- name: update_message_status
-- A status event: its time is kept (the conversation shows it once it has happened), and the
-- latest status only moves forward: a `delivered` posted after `read` (out of order) leaves `read`.
UPDATE messages SET
    status = CASE WHEN (CASE :status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'failed' THEN 4 ELSE 0 END) > (CASE status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'failed' THEN 4 ELSE 0 END) THEN :status ELSE status END,
    sent_at = CASE WHEN :status = 'sent' THEN MIN(COALESCE(sent_at, :at), :at) ELSE sent_at END,
    delivered_at = CASE WHEN :status = 'delivered' THEN MIN(COALESCE(delivered_at, :at), :at) ELSE delivered_at END,
    read_at = CASE WHEN :status = 'read' THEN MIN(COALESCE(read_at, :at), :at) ELSE read_at END,
    failed_at = CASE WHEN :status = 'failed' THEN MIN(COALESCE(failed_at, :at), :at) ELSE failed_at END
WHERE wamid = :wamid;

-- name: insert_event
INSERT OR IGNORE INTO events (id, channel_id, kind, wamid, order_key, created_at, body, injected)
VALUES (?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_delivery
-- Inserts nothing when the destination was removed after routing was decided.
INSERT INTO deliveries (event_id, destination_id, state, created_at, next_attempt_at, deadline, parent_id, order_key)
SELECT :event_id, id, :state, :created_at, :next_attempt_at, :deadline, :parent_id, :order_key
FROM destinations WHERE id = :destination_id AND removed = 0 AND disabled = 0
RETURNING id;

-- name: claim_due
UPDATE deliveries SET lease_until = :lease_until, lease_owner = :owner
WHERE id IN (
    SELECT d.id FROM deliveries d JOIN destinations t ON t.id = d.destination_id
    WHERE d.state = 'pending' AND d.next_attempt_at <= :now
      AND (d.lease_until IS NULL OR d.lease_until < :now)
      -- FIFO destinations: wait until the conversation's earlier events are delivered or dead
      AND (t.fifo = 0 OR NOT EXISTS (
          SELECT 1 FROM deliveries p
          WHERE p.destination_id = d.destination_id AND p.order_key = d.order_key
            AND p.id < d.id AND p.state IN ('pending', 'held')))
    ORDER BY d.next_attempt_at
    LIMIT :limit
)
RETURNING id;

-- name: defer_delivery
-- May lie past the deadline: expire_overdue then dead-letters it without an attempt.
UPDATE deliveries SET next_attempt_at = ?, lease_until = NULL, paused = 1 WHERE id = ?;

-- name: expire_overdue
-- Deliveries whose horizon passed before they could be attempted (process down, clock jump,
-- destination paused) are dead-lettered without an attempt after the horizon.
UPDATE deliveries
SET state = 'dead', next_attempt_at = NULL, lease_until = NULL,
    last_error = coalesce(last_error || '; ', '') || 'the retry horizon passed before the next attempt'
WHERE state = 'pending' AND deadline < :limit_time AND (lease_until IS NULL OR lease_until < :now)
RETURNING id;

-- name: dead_letter_children_of
UPDATE deliveries SET state = 'dead', last_error = 'the main webhook never answered 200'
WHERE parent_id = ? AND state = 'held';

-- name: undefer_destination
-- Only what the breaker postponed: a delivery waiting for a receiver's Retry-After keeps waiting.
UPDATE deliveries SET next_attempt_at = ?, paused = 0
WHERE destination_id = ? AND state = 'pending' AND paused = 1 AND next_attempt_at > ?;

-- name: select_claimed
SELECT d.id, d.event_id, e.order_key, e.created_at, d.deadline, d.attempts - d.retry_base, d.destination_id,
       t.url, t.headers, t.secrets, t.app_secret, e.body
FROM deliveries d
JOIN events e ON e.id = d.event_id
JOIN destinations t ON t.id = d.destination_id
WHERE d.id IN (SELECT value FROM json_each(?))
-- RETURNING gives no order; the dispatcher chains a conversation's deliveries in this one.
ORDER BY d.next_attempt_at, d.id;

-- name: next_due_at
SELECT min(next_attempt_at) FROM deliveries
WHERE state = 'pending' AND (lease_until IS NULL OR lease_until < ?);

-- name: insert_attempt
INSERT INTO attempts (delivery_id, started_at, duration_ms, status_code, error, response_excerpt, headers)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: finish_attempt
UPDATE deliveries
SET state = ?, attempts = attempts + 1, next_attempt_at = ?, lease_until = NULL, paused = 0,
    last_status = ?, last_error = ?
WHERE id = ? AND state = 'pending';

-- name: dead_letter_orphans
-- Deliveries held for a primary delivery of this destination that will never succeed now.
UPDATE deliveries SET state = 'dead', last_error = 'the main webhook never answered 200'
WHERE state = 'held' AND parent_id IN (SELECT id FROM deliveries WHERE destination_id = ? AND state = 'dead');

-- name: release_children
UPDATE deliveries SET state = 'pending', next_attempt_at = ? WHERE parent_id = ? AND state = 'held';

-- name: dead_letter_children
UPDATE deliveries SET state = 'dead', last_error = 'the main webhook never answered 200'
WHERE parent_id = ? AND state = 'held';

-- name: disable_destination
UPDATE destinations SET disabled = 1 WHERE id = ?;

-- name: dead_letter_disabled
UPDATE deliveries SET state = 'dead', next_attempt_at = NULL, lease_until = NULL,
       last_error = 'destination disabled: the receiver answered 410 Gone'
WHERE destination_id = ? AND state IN ('pending', 'held') AND id != ?;

-- name: insert_notice
INSERT INTO notices (at, channel_id, kind, detail) VALUES (?, ?, ?, ?);

-- name: select_destination_scope
SELECT scope, name, url FROM destinations WHERE id = ?;

-- name: select_notices
SELECT at, kind, detail FROM notices WHERE channel_id = ? ORDER BY id DESC LIMIT ?;

-- name: select_channel_horizon
SELECT retry_horizon FROM channels WHERE id = ?;

-- name: update_channel_horizon
UPDATE channels SET retry_horizon = ? WHERE id = ?;

-- name: select_deliveries
SELECT d.id, d.event_id, e.kind, e.wamid, t.kind, t.name, t.url, d.state, d.attempts, d.created_at,
       d.next_attempt_at, d.deadline, d.last_status, d.last_error, e.injected
FROM deliveries d
JOIN events e ON e.id = d.event_id
JOIN destinations t ON t.id = d.destination_id
WHERE e.channel_id = :channel_id
  AND (:state IS NULL OR d.state = :state)
  AND (:destination IS NULL OR t.name = :destination)
  AND (:event_id IS NULL OR d.event_id = :event_id)
  AND (:delivery_id IS NULL OR d.id = :delivery_id)
  AND (:since IS NULL OR d.created_at >= :since)
  AND (:until IS NULL OR d.created_at < :until)
  AND (:before_id IS NULL OR d.id < :before_id)
ORDER BY d.id DESC
LIMIT :limit;

-- name: select_attempts
SELECT started_at, duration_ms, status_code, error, response_excerpt, headers
FROM attempts WHERE delivery_id = ? ORDER BY id;

-- name: select_event_body
SELECT body FROM events WHERE id = ?;

-- name: replay_deliveries
UPDATE deliveries
SET state = 'pending', next_attempt_at = :now, deadline = :deadline, lease_until = NULL, parent_id = NULL,
    paused = 0, retry_base = attempts
WHERE id IN (
    SELECT d.id FROM deliveries d
    JOIN events e ON e.id = d.event_id
    JOIN destinations t ON t.id = d.destination_id
    WHERE e.channel_id = :channel_id AND t.removed = 0 AND t.disabled = 0
      AND (:delivery_id IS NULL OR d.id = :delivery_id)
      AND (:event_id IS NULL OR d.event_id = :event_id)
      AND (:state IS NULL OR d.state = :state)
      AND (:destination IS NULL OR t.name = :destination)
      AND (:since IS NULL OR d.created_at >= :since)
      AND (:until IS NULL OR d.created_at < :until)
      AND d.state != 'pending'
);

-- name: queue_stats
-- Two index lookups (a combined aggregate would visit every pending row for the minimum).
SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),
       (SELECT min(created_at) FROM deliveries WHERE state = 'pending');

-- name: release_leases
UPDATE deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL;

-- name: get_kv
SELECT value FROM kv WHERE key = ?;

-- name: set_kv
INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: select_channel_limits
SELECT throughput, rate_limits FROM channels WHERE id = ?;

-- name: update_channel_limits
UPDATE channels SET throughput = ?, rate_limits = ? WHERE id = ?;

-- name: last_inbound_at
SELECT max(created_at) FROM messages WHERE channel_id = ? AND wa_id = ? AND direction = 'in';

-- name: select_inbound
SELECT wa_id, created_at FROM messages WHERE wamid = ? AND channel_id = ? AND direction = 'in';

-- name: mark_read_until
-- Reading a message reads everything the user sent before it, as on WhatsApp.
UPDATE messages SET status = 'read'
WHERE channel_id = ? AND wa_id = ? AND direction = 'in' AND created_at <= ? AND status <> 'read';

-- name: select_conversation
-- The status as of :now (NULL: the latest known), since statuses are stored before they happen.
SELECT wamid, direction, type, content, context_message_id,
       CASE WHEN :now IS NULL THEN status
            WHEN failed_at <= :now THEN 'failed'
            WHEN read_at <= :now THEN 'read'
            WHEN delivered_at <= :now THEN 'delivered'
            WHEN sent_at <= :now THEN 'sent'
            WHEN COALESCE(sent_at, delivered_at, read_at, failed_at) IS NOT NULL THEN 'accepted'
            ELSE status END, created_at
FROM messages WHERE channel_id = :channel_id AND wa_id = :wa_id
ORDER BY created_at DESC, rowid DESC LIMIT :limit;

-- name: select_conversation_message
SELECT wamid, direction, type, content, context_message_id, status, created_at
FROM messages WHERE channel_id = ? AND wa_id = ? AND wamid = ?;

-- name: insert_media
INSERT INTO media (id, channel_id, sha256, mime_type, file_size, filename, created_at) VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: select_media
SELECT id, channel_id, sha256, mime_type, file_size, filename, created_at FROM media WHERE id = ? AND channel_id = ?;

-- name: delete_media
DELETE FROM media WHERE id = ? AND channel_id = ? RETURNING sha256;

-- name: count_media_sha256
SELECT count(*) FROM media WHERE sha256 = ?;

-- name: insert_template
INSERT INTO templates (id, waba_id, name, language, category, components, decision, rejected_reason,
                       decided_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: select_templates
SELECT id, name, language, category, components, decision, rejected_reason, decided_at, created_at
FROM templates WHERE waba_id = ? ORDER BY name, language;

-- name: select_template
SELECT id, name, language, category, components, decision, rejected_reason, decided_at, created_at
FROM templates WHERE waba_id = ? AND name = ? AND language = ?;

-- name: delete_templates
DELETE FROM templates WHERE waba_id = ? AND name = ?
RETURNING id, name, language, category, components, decision, rejected_reason, decided_at, created_at;

-- name: withdraw_deliveries
-- Only an event no receiver has seen yet can be withdrawn.
DELETE FROM deliveries
WHERE event_id = :event AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = :event AND attempts > 0);

-- name: withdraw_event
DELETE FROM events WHERE id = :event AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event_id = :event);

-- name: settle_outbound
-- A message handed over synchronously gets the id the network gave it.
UPDATE messages SET wamid = :remote, status = 'accepted' WHERE wamid = :wamid;

-- name: delete_outbound
-- The network refused the message (or its answer never came): it was not accepted.
DELETE FROM messages WHERE wamid = ? AND direction = 'out';

-- name: select_meta_links
SELECT channel_id, phone_number_id, waba_id, access_token, app_secret FROM meta_links ORDER BY channel_id;

-- name: upsert_meta_link
INSERT INTO meta_links (channel_id, phone_number_id, waba_id, access_token, app_secret)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (channel_id) DO UPDATE SET phone_number_id = excluded.phone_number_id, waba_id = excluded.waba_id,
    access_token = excluded.access_token, app_secret = excluded.app_secret;

-- name: update_channel_connector
UPDATE channels SET connector = ? WHERE id = ?;

-- name: insert_meta_inbox
INSERT INTO meta_inbox (received_at, body) VALUES (?, ?);

-- name: take_meta_inbox
UPDATE meta_inbox SET taken_until = :until
WHERE id IN (
    SELECT id FROM meta_inbox WHERE taken_until IS NULL OR taken_until < :now ORDER BY id LIMIT :limit
)
RETURNING id, body, received_at;

-- name: put_back_meta_inbox
UPDATE meta_inbox SET taken_until = NULL WHERE id = ?;

-- name: release_meta_inbox
UPDATE meta_inbox SET taken_until = NULL WHERE taken_until IS NOT NULL;

-- name: delete_meta_inbox
DELETE FROM meta_inbox WHERE id = ?;


-- name: select_rate_buckets
SELECT key, due FROM rate_buckets WHERE key IN (SELECT value FROM json_each(?));

-- name: set_rate_bucket
INSERT INTO rate_buckets (key, due) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET due = excluded.due;
