DROP FUNCTION provider_changes_since(BIGINT, BIGINT[], BOOLEAN);
