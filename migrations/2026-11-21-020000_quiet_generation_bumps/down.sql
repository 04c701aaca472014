DROP TRIGGER resource_providers_log_update ON resource_providers;
DROP FUNCTION log_provider_row_update();
CREATE TRIGGER resource_providers_log_update AFTER UPDATE ON resource_providers
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION log_provider_row_changes();
