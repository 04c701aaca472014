DROP FUNCTION claim_within_view(UUID, TEXT, TEXT, TEXT, INTEGER[], INTEGER[], INTEGER[],
                                BIGINT[], BIGINT[], BIGINT[], BIGINT[], BIGINT[],
                                DOUBLE PRECISION[], BIGINT[], INTEGER[], INTEGER[], BIGINT[]);
