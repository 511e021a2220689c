-- Retention finds old deliveries by id instead: ids begin with their creation time. An index
-- on created_at cost an entry at every insert and, on PostgreSQL, at every lease and every
-- outcome too (an UPDATE of an indexed column writes a new entry into every index).
DROP INDEX deliveries_created;
