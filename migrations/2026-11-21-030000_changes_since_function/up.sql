-- The per-request freshness check of the candidates view, as a function so
-- that its plan is made once per session. Sent as a prepared statement, the
-- query takes an array (the seqs of open gaps), and PostgreSQL keeps
-- choosing a custom plan for array parameters: planning cost several times
-- what running it does, on every GET /allocation_candidates. In here the
-- generic plan is forced, made without sequential scans (an index plan
-- however small provider_changes was when it was made), and never JIT
-- compiled (the one unavoidable scan, of the one-row pruning mark, would
-- otherwise be costed past jit_above_cost).
--
-- One statement, so one snapshot: the rows after `after` and those of
-- `gaps`, the snapshot's xmin, the pruning mark and, when asked for, a
-- transaction id assigned while it runs.
CREATE FUNCTION provider_changes_since(after BIGINT, gaps BIGINT[], want_xid BOOLEAN)
RETURNS TABLE (xmin BIGINT, pruned_through BIGINT, fresh_xid BIGINT, seq BIGINT,
               provider_id INTEGER)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET jit = off
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT s.snapshot_xmin, p.through, s.assigned_xid, c.seq, c.provider_id
    FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS snapshot_xmin,
                 CASE WHEN want_xid THEN pg_current_xact_id()::text::bigint END
                     AS assigned_xid) s
    CROSS JOIN provider_changes_pruned p
    LEFT JOIN provider_changes c ON c.seq > after OR c.seq = ANY(gaps)
    ORDER BY c.seq;
END;
$$;
