-- The hand-over lease of an accepted message (the same column as PostgreSQL's,
-- where several nodes share the work): who hands it to the connector.
ALTER TABLE messages ADD COLUMN handover_lease REAL;
