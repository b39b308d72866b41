-- When each status of a message takes effect (statuses are dated ahead by the sandbox):
-- a phone view shows a message as it stands at the moment it is asked for.
ALTER TABLE messages ADD COLUMN sent_at REAL;
ALTER TABLE messages ADD COLUMN delivered_at REAL;
ALTER TABLE messages ADD COLUMN read_at REAL;
ALTER TABLE messages ADD COLUMN failed_at REAL;
