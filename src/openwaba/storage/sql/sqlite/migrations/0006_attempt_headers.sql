-- The request headers of each attempt (JSON), as they were sent: the delivery log shows them.
ALTER TABLE attempts ADD COLUMN headers TEXT;
