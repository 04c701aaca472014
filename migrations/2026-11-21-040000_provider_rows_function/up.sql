-- What the candidates view holds of some providers, read on every refresh
-- that found changes: as a function for the reason `provider_changes_since`
-- is one. Sent as a prepared statement, its array parameter kept
-- PostgreSQL choosing a custom plan, planned again on every call at twice
-- the cost of running it. In here the generic plan is forced, made without
-- sequential scans, and never JIT compiled.
--
-- Rows of kinds 2 to 6 (provider, inventory, usage, trait link, aggregate
-- link) in one column layout; see `storage::world::RefreshRow`.
CREATE FUNCTION provider_rows(ids INTEGER[])
RETURNS TABLE (kind INTEGER, id INTEGER, ref_id INTEGER, root_id INTEGER, generation INTEGER,
               uuid UUID, name TEXT, n1 BIGINT, n2 BIGINT, n3 BIGINT, n4 BIGINT, n5 BIGINT,
               ratio DOUBLE PRECISION)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT 2, rp.id, rp.parent_provider_id, rp.root_provider_id, rp.generation, rp.uuid,
           NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
           NULL::double precision
    FROM resource_providers rp WHERE rp.id = ANY(ids)
    UNION ALL
    SELECT 3, i.resource_provider_id, i.resource_class_id, NULL, NULL, NULL, NULL,
           i.total, i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio
    FROM inventories i WHERE i.resource_provider_id = ANY(ids)
    UNION ALL
    SELECT 4, a.resource_provider_id, a.resource_class_id, NULL, NULL, NULL, NULL,
           SUM(a.used)::bigint, NULL, NULL, NULL, NULL, NULL
    FROM allocations a WHERE a.resource_provider_id = ANY(ids)
    GROUP BY a.resource_provider_id, a.resource_class_id
    UNION ALL
    SELECT 5, t.resource_provider_id, t.trait_id, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL
    FROM resource_provider_traits t WHERE t.resource_provider_id = ANY(ids)
    UNION ALL
    SELECT 6, rpa.resource_provider_id, rpa.aggregate_id, NULL, NULL, pa.uuid, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL
    FROM resource_provider_aggregates rpa
    JOIN placement_aggregates pa ON pa.id = rpa.aggregate_id
    WHERE rpa.resource_provider_id = ANY(ids);
END;
$$;
