-- The change feed of GET /changes: one row per provider and committed
-- transaction, numbered in commit order. A deferred trigger on the change
-- log publishes each transaction's changed providers as it commits,
-- holding one advisory lock from the first publication to the end of the
-- commit, so a row's seq is above the seq of every transaction that
-- committed before it and no row with a lower seq can become visible
-- later: a follower that has read up to a seq never misses a change by
-- moving past it. The row carries the provider's generation as the
-- transaction committed it (NULL once the provider is deleted).

CREATE TABLE change_feed (
    seq BIGSERIAL PRIMARY KEY,
    xid BIGINT NOT NULL,
    provider_id INTEGER NOT NULL,
    provider_uuid UUID,
    generation INTEGER
);
CREATE UNIQUE INDEX change_feed_transaction_provider ON change_feed (xid, provider_id);

-- Everything at or below `through` has been pruned from change_feed: a
-- cursor below it is answered 410.
CREATE TABLE change_feed_pruned (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    through BIGINT NOT NULL DEFAULT 0
);
INSERT INTO change_feed_pruned (id, through) VALUES (TRUE, 0);

-- A deleted provider's uuid, kept for the feed.
ALTER TABLE provider_changes ADD COLUMN provider_uuid UUID;

CREATE OR REPLACE FUNCTION log_provider_row_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO provider_changes (provider_id) SELECT id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO provider_changes (provider_id, provider_uuid) SELECT id, uuid FROM old_rows;
    ELSE
        INSERT INTO provider_changes (provider_id)
        SELECT id FROM new_rows UNION SELECT id FROM old_rows;
    END IF;
    RETURN NULL;
END;
$$;

-- Every generation move is logged too, and a rename (which moves none):
-- a whole-set write that leaves the rows as they were (the same
-- aggregates again) still moves the generation, and a follower of the
-- feed must see the generation it holds move with it.
DROP TRIGGER resource_providers_log_update ON resource_providers;
CREATE TRIGGER resource_providers_log_update AFTER UPDATE ON resource_providers
    FOR EACH ROW
    WHEN (OLD.uuid IS DISTINCT FROM NEW.uuid
          OR OLD.name IS DISTINCT FROM NEW.name
          OR OLD.generation IS DISTINCT FROM NEW.generation
          OR OLD.parent_provider_id IS DISTINCT FROM NEW.parent_provider_id
          OR OLD.root_provider_id IS DISTINCT FROM NEW.root_provider_id)
    EXECUTE FUNCTION log_provider_row_update();

CREATE FUNCTION publish_provider_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    current_uuid UUID;
    current_generation INTEGER;
BEGIN
    -- (class 0x706c6163 'plac', 1): the commit-order lock of the feed.
    PERFORM pg_advisory_xact_lock(1886151011, 1);
    SELECT uuid, generation INTO current_uuid, current_generation
    FROM resource_providers WHERE id = NEW.provider_id;
    INSERT INTO change_feed (xid, provider_id, provider_uuid, generation)
    VALUES (pg_current_xact_id()::text::bigint, NEW.provider_id,
            COALESCE(current_uuid, NEW.provider_uuid), current_generation)
    ON CONFLICT (xid, provider_id) DO UPDATE
        SET provider_uuid = COALESCE(change_feed.provider_uuid, EXCLUDED.provider_uuid),
            generation = EXCLUDED.generation;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER provider_changes_publish AFTER INSERT ON provider_changes
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.provider_id IS NOT NULL)
    EXECUTE FUNCTION publish_provider_change();
