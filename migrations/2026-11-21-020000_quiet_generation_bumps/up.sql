-- A provider row update is logged only when it changes what the in-memory
-- World reads of the row: its uuid, parent or root. A bare generation bump
-- (every write's compare-and-swap) or a rename logs nothing: the change
-- that came with the bump (inventories, allocations, traits, aggregates)
-- is logged by its own table's trigger in the same transaction, and the
-- World does not use names; its copy of a provider's generation is as of
-- the provider's last logged change (candidates never show generations).
--
-- A row-level trigger with a WHEN condition: the condition is checked in
-- the executor without calling any function, so a generation bump costs
-- no trigger call, no transition table and no change row.

DROP TRIGGER resource_providers_log_update ON resource_providers;

CREATE FUNCTION log_provider_row_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO provider_changes (provider_id) VALUES (NEW.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER resource_providers_log_update AFTER UPDATE ON resource_providers
    FOR EACH ROW
    WHEN (OLD.uuid IS DISTINCT FROM NEW.uuid
          OR OLD.parent_provider_id IS DISTINCT FROM NEW.parent_provider_id
          OR OLD.root_provider_id IS DISTINCT FROM NEW.root_provider_id)
    EXECUTE FUNCTION log_provider_row_update();
