-- A batch of claims trusts the view's check of a provider whose generation
-- is still the one the view read with its inventories and usage: every
-- write that raises a provider's usage or changes its inventories moves
-- its generation (the compare-and-swap of upstream's API), and a write
-- that only lowers usage cannot break a check that passed. So the usage
-- is summed, and the inventories compared, only for the providers whose
-- generation moved since the view read them (usually none: the view
-- refreshes just before placing), and the generations the batch leaves
-- are answered only for the providers the view was current on, so that a
-- view never holds a generation with usage it has not seen.
--
-- The batch's generation bumps log no change rows of their own: the
-- allocations it inserts log the same providers in the same statement
-- sequence, so each claimed provider is published to the feed once.

-- A generation move alone is not logged while the transaction says its
-- allocation rows log the same providers.
DROP TRIGGER resource_providers_log_update ON resource_providers;
CREATE TRIGGER resource_providers_log_update AFTER UPDATE ON resource_providers
    FOR EACH ROW
    WHEN (OLD.uuid IS DISTINCT FROM NEW.uuid
          OR OLD.name IS DISTINCT FROM NEW.name
          OR (OLD.generation IS DISTINCT FROM NEW.generation
              AND current_setting('placement.bumps_logged_by_allocations', TRUE)
                  IS DISTINCT FROM 'on')
          OR OLD.parent_provider_id IS DISTINCT FROM NEW.parent_provider_id
          OR OLD.root_provider_id IS DISTINCT FROM NEW.root_provider_id)
    EXECUTE FUNCTION log_provider_row_update();

DROP FUNCTION claims_within_view(UUID[], TEXT[], TEXT[], TEXT[], INTEGER[], INTEGER[],
                                 INTEGER[], INTEGER[], BIGINT[], BIGINT[], BIGINT[],
                                 BIGINT[], BIGINT[], DOUBLE PRECISION[], BIGINT[],
                                 INTEGER[], INTEGER[], INTEGER[], BIGINT[]);

-- As in `claim_batches`, with `checked_generations`: the view's generation
-- of each checked row's provider when the claim was placed.
CREATE FUNCTION claims_within_view(
    consumer_uuids UUID[],
    project_external_ids TEXT[],
    user_external_ids TEXT[],
    consumer_type_names TEXT[],
    provider_ids INTEGER[],
    checked_claims INTEGER[],
    checked_providers INTEGER[],
    checked_generations INTEGER[],
    checked_classes INTEGER[],
    checked_totals BIGINT[],
    checked_reserved BIGINT[],
    checked_min_units BIGINT[],
    checked_max_units BIGINT[],
    checked_step_sizes BIGINT[],
    checked_ratios DOUBLE PRECISION[],
    usage_ceilings BIGINT[],
    allocation_claims INTEGER[],
    allocation_providers INTEGER[],
    allocation_classes INTEGER[],
    allocation_amounts BIGINT[])
RETURNS TABLE (outcomes SMALLINT[], change_seqs BIGINT[], bumped_providers INTEGER[],
               generations INTEGER[])
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    -- Every change-log row this transaction writes comes after this seq.
    first_seq BIGINT := (SELECT last_value FROM provider_changes_seq_seq);
    claims INTEGER := cardinality(consumer_uuids);
    outcome SMALLINT[] := array_fill(0::SMALLINT, ARRAY[cardinality(consumer_uuids)]);
    created UUID[];
    locked_ids INTEGER[];
    locked_generations INTEGER[];
    -- Per checked row: its provider's generation is the view's.
    current BOOLEAN[];
    stale_providers INTEGER[];
    unchanged BOOLEAN[];
    used BIGINT[];
    fits BOOLEAN;
    refused UUID[] := '{}';
    claim INTEGER;
    checked INTEGER;
    added INTEGER;
BEGIN
    -- In id order, as every writer takes them, with the generations they
    -- are at.
    SELECT array_agg(locked.id), array_agg(locked.generation)
    INTO locked_ids, locked_generations
    FROM (SELECT rp.id, rp.generation FROM resource_providers rp
          WHERE rp.id = ANY(provider_ids)
          ORDER BY rp.id FOR NO KEY UPDATE) AS locked;

    SELECT array_agg(COALESCE(locked.generation = checked.generation, FALSE)
                     ORDER BY checked.row_number),
           COALESCE(array_agg(DISTINCT checked.provider_id)
                    FILTER (WHERE locked.generation IS DISTINCT FROM checked.generation), '{}')
    INTO current, stale_providers
    FROM unnest(checked_providers, checked_generations) WITH ORDINALITY
         AS checked(provider_id, generation, row_number)
    LEFT JOIN unnest(locked_ids, locked_generations) AS locked(id, generation)
      ON locked.id = checked.provider_id;

    WITH inserted AS (
        INSERT INTO consumers (uuid, project_id, user_id, consumer_type_id, generation)
        SELECT wanted.uuid, p.id, u.id, ct.id, 1
        FROM unnest(consumer_uuids, project_external_ids, user_external_ids,
                    consumer_type_names) AS wanted(uuid, project, owner, type_name)
        JOIN projects p ON p.external_id = wanted.project
        JOIN users u ON u.external_id = wanted.owner
        LEFT JOIN consumer_types ct ON ct.name = wanted.type_name
        WHERE wanted.type_name IS NULL OR ct.id IS NOT NULL
        ON CONFLICT DO NOTHING
        RETURNING uuid)
    SELECT COALESCE(array_agg(uuid), '{}') INTO created FROM inserted;

    -- Per checked row of a provider that moved on: its inventory is as
    -- checked, and the usage now.
    IF cardinality(stale_providers) > 0 THEN
        SELECT array_agg(i.resource_provider_id IS NOT NULL ORDER BY row_number),
               array_agg(COALESCE(usage.used, 0) ORDER BY row_number)
        INTO unchanged, used
        FROM unnest(checked_providers, checked_classes, checked_totals, checked_reserved,
                    checked_min_units, checked_max_units, checked_step_sizes, checked_ratios)
             WITH ORDINALITY
             AS checked(provider_id, class_id, total, reserved, min_unit, max_unit, step_size,
                        allocation_ratio, row_number)
        LEFT JOIN inventories i
          ON i.resource_provider_id = checked.provider_id
         AND i.resource_class_id = checked.class_id
         AND (i.total, i.reserved, i.min_unit, i.max_unit, i.step_size, i.allocation_ratio)
           = (checked.total, checked.reserved, checked.min_unit, checked.max_unit,
              checked.step_size, checked.allocation_ratio)
        LEFT JOIN (SELECT a.resource_provider_id, a.resource_class_id, SUM(a.used) AS used
                   FROM allocations a
                   WHERE a.resource_provider_id = ANY(stale_providers)
                   GROUP BY a.resource_provider_id, a.resource_class_id) AS usage
          ON usage.resource_provider_id = checked.provider_id
         AND usage.resource_class_id = checked.class_id;
    END IF;

    FOR claim IN 1..claims LOOP
        IF NOT consumer_uuids[claim] = ANY(created)
           OR consumer_uuids[claim] = ANY(consumer_uuids[1:claim - 1]) THEN
            outcome[claim] := 1;
            CONTINUE;
        END IF;
        fits := TRUE;
        FOR checked IN 1..COALESCE(cardinality(checked_claims), 0) LOOP
            IF checked_claims[checked] = claim
               AND NOT current[checked]
               AND (NOT unchanged[checked] OR used[checked] > usage_ceilings[checked]) THEN
                fits := FALSE;
            END IF;
        END LOOP;
        IF NOT fits THEN
            outcome[claim] := 2;
            refused := refused || consumer_uuids[claim];
            CONTINUE;
        END IF;
        -- What this claim adds counts for the claims after it.
        FOR added IN 1..COALESCE(cardinality(allocation_claims), 0) LOOP
            IF allocation_claims[added] = claim THEN
                FOR checked IN 1..COALESCE(cardinality(checked_claims), 0) LOOP
                    IF checked_claims[checked] > claim
                       AND NOT current[checked]
                       AND checked_providers[checked] = allocation_providers[added]
                       AND checked_classes[checked] = allocation_classes[added] THEN
                        used[checked] := used[checked] + allocation_amounts[added];
                    END IF;
                END LOOP;
            END IF;
        END LOOP;
    END LOOP;

    -- The consumers of claims not written go again.
    IF cardinality(refused) > 0 THEN
        DELETE FROM consumers WHERE uuid = ANY(refused);
    END IF;

    PERFORM set_config('placement.bumps_logged_by_allocations', 'on', TRUE);
    WITH bumped AS (
        UPDATE resource_providers rp
        SET generation = rp.generation + bumps.writes, updated_at = now()
        FROM (SELECT claimed.provider_id, count(DISTINCT claimed.claim) AS writes
              FROM unnest(allocation_claims, allocation_providers)
                   AS claimed(claim, provider_id)
              WHERE outcome[claimed.claim] = 0
              GROUP BY claimed.provider_id) AS bumps
        WHERE rp.id = bumps.provider_id
        RETURNING rp.id, rp.generation)
    SELECT COALESCE(array_agg(bumped.id), '{}'), COALESCE(array_agg(bumped.generation), '{}')
    INTO bumped_providers, generations
    FROM bumped
    WHERE NOT bumped.id = ANY(stale_providers);
    PERFORM set_config('placement.bumps_logged_by_allocations', 'off', TRUE);
    INSERT INTO allocations (resource_provider_id, consumer_id, resource_class_id, used)
    SELECT claimed.provider_id, consumer_uuids[claimed.claim], claimed.class_id, claimed.amount
    FROM unnest(allocation_claims, allocation_providers, allocation_classes, allocation_amounts)
         AS claimed(claim, provider_id, class_id, amount)
    WHERE outcome[claimed.claim] = 0;

    -- xmin is the low 32 bits of the transaction id.
    SELECT COALESCE(array_agg(pc.seq), '{}') INTO change_seqs
    FROM provider_changes pc
    WHERE pc.seq > first_seq
      AND pc.xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296;
    outcomes := outcome;
    RETURN NEXT;
END;
$$;
