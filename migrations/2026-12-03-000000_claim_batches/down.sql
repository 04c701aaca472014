DROP FUNCTION claims_within_view(UUID[], TEXT[], TEXT[], TEXT[], INTEGER[], INTEGER[],
                                 INTEGER[], INTEGER[], BIGINT[], BIGINT[], BIGINT[],
                                 BIGINT[], BIGINT[], DOUBLE PRECISION[], BIGINT[],
                                 INTEGER[], INTEGER[], INTEGER[], BIGINT[]);
