DROP TRIGGER provider_changes_publish ON provider_changes;
DROP FUNCTION publish_provider_change();
DROP TRIGGER resource_providers_log_update ON resource_providers;
CREATE TRIGGER resource_providers_log_update AFTER UPDATE ON resource_providers
    FOR EACH ROW
    WHEN (OLD.uuid IS DISTINCT FROM NEW.uuid
          OR OLD.parent_provider_id IS DISTINCT FROM NEW.parent_provider_id
          OR OLD.root_provider_id IS DISTINCT FROM NEW.root_provider_id)
    EXECUTE FUNCTION log_provider_row_update();
CREATE OR REPLACE FUNCTION log_provider_row_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO provider_changes (provider_id) SELECT id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO provider_changes (provider_id) SELECT id FROM old_rows;
    ELSE
        INSERT INTO provider_changes (provider_id)
        SELECT id FROM new_rows UNION SELECT id FROM old_rows;
    END IF;
    RETURN NULL;
END;
$$;
ALTER TABLE provider_changes DROP COLUMN provider_uuid;
DROP TABLE change_feed_pruned;
DROP TABLE change_feed;
