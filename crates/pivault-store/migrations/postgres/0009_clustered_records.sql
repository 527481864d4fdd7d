-- Issue 12 (speed of the retention sweep): the sweep walks retention_items by its primary key
-- (subject by subject), and the report counts what is due with one scan, so the
-- (category, event_at, …) index only cost a write per item. On SQLite this migration also
-- stores fields and retention_items in primary-key order (WITHOUT ROWID); PostgreSQL's heap
-- has no such layout. Forward-only; same version number on both backends.
DROP INDEX retention_items_due;
