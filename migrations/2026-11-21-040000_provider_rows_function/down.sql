DROP FUNCTION provider_rows(INTEGER[]);
