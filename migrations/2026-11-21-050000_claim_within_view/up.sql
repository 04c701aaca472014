-- A new consumer's allocations, checked by the server against its
-- in-memory view of the providers, written in one round trip. For each
-- (provider, class) the server passes the inventory it checked against
-- and the most usage at which its check still passes. Once the providers'
-- rows are locked no other claim can add usage before this one commits
-- (every allocation write locks them first), so if the inventories are
-- still those and the usage is at most that, the check holds in the
-- database too, however old the view. Then this writes and answers true;
-- otherwise it answers false having written nothing, and the server takes
-- the full write path, which reads everything from the database.
--
-- A function so that its statements take a new snapshot each (the usage
-- read after the lock sees what the lock waited for) and keep their plans
-- for the session, generic and without sequential scans.
CREATE FUNCTION claim_within_view(
    consumer_uuid UUID,
    project_external_id TEXT,
    user_external_id TEXT,
    consumer_type_name TEXT,
    provider_ids INTEGER[],
    checked_providers INTEGER[],
    checked_classes INTEGER[],
    checked_totals BIGINT[],
    checked_reserved BIGINT[],
    checked_min_units BIGINT[],
    checked_max_units BIGINT[],
    checked_step_sizes BIGINT[],
    checked_ratios DOUBLE PRECISION[],
    usage_ceilings BIGINT[],
    allocation_providers INTEGER[],
    allocation_classes INTEGER[],
    allocation_amounts BIGINT[])
RETURNS BOOLEAN
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    locked INTEGER;
    holding INTEGER;
    created INTEGER;
BEGIN
    -- In id order, as every writer takes them.
    SELECT count(*) INTO locked
    FROM (SELECT rp.id FROM resource_providers rp
          WHERE rp.id = ANY(provider_ids)
          ORDER BY rp.id FOR NO KEY UPDATE) AS locked_rows;
    IF locked <> cardinality(provider_ids) THEN
        RETURN FALSE;
    END IF;

    SELECT count(*) INTO holding
    FROM unnest(checked_providers, checked_classes, checked_totals, checked_reserved,
                checked_min_units, checked_max_units, checked_step_sizes, checked_ratios,
                usage_ceilings)
         AS checked(provider_id, class_id, total, reserved, min_unit, max_unit, step_size,
                    allocation_ratio, usage_ceiling)
    JOIN inventories i
      ON i.resource_provider_id = checked.provider_id
     AND i.resource_class_id = checked.class_id
     AND (i.total, i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio)
       = (checked.total, checked.reserved, checked.min_unit, checked.max_unit,
          checked.step_size, checked.allocation_ratio)
    -- By provider alone: the one index that leads with it is the one for
    -- this, whatever the statistics were when the plan was made.
    LEFT JOIN (SELECT a.resource_provider_id, a.resource_class_id, SUM(a.used) AS used
               FROM allocations a
               WHERE a.resource_provider_id = ANY(provider_ids)
               GROUP BY a.resource_provider_id, a.resource_class_id) AS usage
      ON usage.resource_provider_id = checked.provider_id
     AND usage.resource_class_id = checked.class_id
    WHERE COALESCE(usage.used, 0) <= checked.usage_ceiling;
    IF holding <> cardinality(checked_providers) THEN
        RETURN FALSE;
    END IF;

    -- The first write: nothing is left to undo when it does not happen.
    INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id, generation)
    SELECT consumer_uuid, p.id, u.id, ct.id, 1
    FROM projects p
    CROSS JOIN users u
    LEFT JOIN consumer_types ct ON ct.name = consumer_type_name
    WHERE p.external_id = project_external_id
      AND u.external_id = user_external_id
      AND (consumer_type_name IS NULL OR ct.id IS NOT NULL)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS created = ROW_COUNT;
    IF created = 0 THEN
        RETURN FALSE;
    END IF;

    UPDATE resource_providers SET generation = generation + 1, updated_at = now()
    WHERE id = ANY(provider_ids);
    INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used)
    SELECT claimed.provider_id, consumer_uuid, claimed.class_id, claimed.amount
    FROM unnest(allocation_providers, allocation_classes, allocation_amounts)
         AS claimed(provider_id, class_id, amount);
    RETURN TRUE;
END;
$$;
