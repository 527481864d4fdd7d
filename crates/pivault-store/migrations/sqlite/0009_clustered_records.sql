-- Issue 12 (speed of the retention sweep): a record's sealed fields and its retention item are
-- stored in their primary key's order (WITHOUT ROWID), so the fields of one subject sit on the
-- same B-tree pages. Before, each table was a rowid table in import order with a separate
-- primary-key index: deleting a record touched an index page and a table page at two
-- unrelated places, and a sweep of a million records rewrote most pages several times.
-- The sweep's walk is the primary key (subject by subject); the (category, event_at, …)
-- index is dropped: every deletion rewrote a page of it at random, and the report counts
-- what is due with one scan. Forward-only; same version number on both backends.
CREATE TABLE fields_clustered (
    subject_id       TEXT NOT NULL,
    record           TEXT NOT NULL,
    name             TEXT NOT NULL,
    category         TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    ciphertext       BLOB NOT NULL,
    restricted_until INTEGER,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (subject_id, record, name)
) WITHOUT ROWID;
INSERT INTO fields_clustered (subject_id, record, name, category, key_id, ciphertext,
                              restricted_until, updated_at)
SELECT subject_id, record, name, category, key_id, ciphertext, restricted_until, updated_at
FROM fields ORDER BY subject_id, record, name;
-- secure_delete is on for every connection: the old table's pages are zeroed as they are freed.
DROP TABLE fields;
ALTER TABLE fields_clustered RENAME TO fields;
CREATE INDEX fields_restricted ON fields (restricted_until) WHERE restricted_until IS NOT NULL;

CREATE TABLE retention_items_clustered (
    subject_id  TEXT NOT NULL,
    record      TEXT NOT NULL,
    category    TEXT NOT NULL,
    event_at    INTEGER NOT NULL,
    PRIMARY KEY (subject_id, record)
) WITHOUT ROWID;
INSERT INTO retention_items_clustered (subject_id, record, category, event_at)
SELECT subject_id, record, category, event_at FROM retention_items ORDER BY subject_id, record;
DROP TABLE retention_items;
ALTER TABLE retention_items_clustered RENAME TO retention_items;
