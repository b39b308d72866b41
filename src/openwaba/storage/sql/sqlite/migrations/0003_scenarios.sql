-- Sandbox scenarios: what a scenario injected into an event (a delay, a
-- duplicate, statuses out of order, a failure), so the delivery log can show
-- it as injected and nobody mistakes it for real WhatsApp behaviour.
ALTER TABLE events ADD COLUMN injected TEXT;  -- comma-separated labels; NULL when nothing was injected
