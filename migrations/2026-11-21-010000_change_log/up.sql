-- The change log that keeps each process's in-memory view of providers
-- (read by GET /allocation_candidates) in step with the database: every
-- statement that changes a provider's row, inventories, allocations,
-- traits or aggregates logs the ids of the providers it touched, once per
-- provider and statement; a change to the class or trait names logs a row
-- whose provider_id is NULL ("reload the names"). Rows are written by
-- statement-level triggers in the writer's own transaction, so they commit
-- (or roll back) with the change they describe.

CREATE TABLE provider_changes (
    seq BIGSERIAL PRIMARY KEY,
    provider_id INTEGER,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Everything at or below `through` has been pruned from provider_changes.
-- A process that has not seen all of it must reload its view in full.
CREATE TABLE provider_changes_pruned (
    id BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    through BIGINT NOT NULL DEFAULT 0
);
INSERT INTO provider_changes_pruned (id, through) VALUES (TRUE, 0);

-- Log the distinct providers of the statement's transition tables: one
-- function for the tables keyed by resource_provider_id, one for
-- resource_providers itself (static SQL, so plans are cached).
CREATE FUNCTION log_provider_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO provider_changes (provider_id)
        SELECT DISTINCT resource_provider_id FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO provider_changes (provider_id)
        SELECT DISTINCT resource_provider_id FROM old_rows;
    ELSE
        INSERT INTO provider_changes (provider_id)
        SELECT resource_provider_id FROM new_rows
        UNION SELECT resource_provider_id FROM old_rows;
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION log_provider_row_changes() RETURNS trigger LANGUAGE plpgsql AS $$
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

-- Logs one "reload the names" row when the statement changed any row.
CREATE FUNCTION log_name_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO provider_changes (provider_id)
        SELECT NULL WHERE EXISTS (SELECT 1 FROM old_rows);
    ELSE
        INSERT INTO provider_changes (provider_id)
        SELECT NULL WHERE EXISTS (SELECT 1 FROM new_rows);
    END IF;
    RETURN NULL;
END;
$$;


CREATE TRIGGER resource_providers_log_insert AFTER INSERT ON resource_providers
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_row_changes();
CREATE TRIGGER resource_providers_log_update AFTER UPDATE ON resource_providers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_row_changes();
CREATE TRIGGER resource_providers_log_delete AFTER DELETE ON resource_providers
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_row_changes();
CREATE TRIGGER inventories_log_insert AFTER INSERT ON inventories
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER inventories_log_update AFTER UPDATE ON inventories
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER inventories_log_delete AFTER DELETE ON inventories
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER allocations_log_insert AFTER INSERT ON allocations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER allocations_log_update AFTER UPDATE ON allocations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER allocations_log_delete AFTER DELETE ON allocations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER resource_provider_traits_log_insert AFTER INSERT ON resource_provider_traits
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER resource_provider_traits_log_update AFTER UPDATE ON resource_provider_traits
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER resource_provider_traits_log_delete AFTER DELETE ON resource_provider_traits
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER resource_provider_aggregates_log_insert AFTER INSERT ON resource_provider_aggregates
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER resource_provider_aggregates_log_update AFTER UPDATE ON resource_provider_aggregates
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();
CREATE TRIGGER resource_provider_aggregates_log_delete AFTER DELETE ON resource_provider_aggregates
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_changes();

CREATE TRIGGER resource_classes_log_insert AFTER INSERT ON resource_classes
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_name_changes();
CREATE TRIGGER resource_classes_log_update AFTER UPDATE ON resource_classes
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_name_changes();
CREATE TRIGGER resource_classes_log_delete AFTER DELETE ON resource_classes
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_name_changes();
CREATE TRIGGER traits_log_insert AFTER INSERT ON traits
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_name_changes();
CREATE TRIGGER traits_log_update AFTER UPDATE ON traits
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_name_changes();
CREATE TRIGGER traits_log_delete AFTER DELETE ON traits
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_name_changes();
