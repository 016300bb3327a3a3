-- The audit trail, partitioned by month (native range partitioning on occurred_at): every read
-- writes a row, so at thousands of reads a second the trail grows by hundreds of millions of
-- rows a day and must be kept for years. Per month, inserts touch small recent indexes, the
-- trail's queries read only the months they ask for, vacuum works month by month, and an old
-- month can be detached and archived whole (docs/security.md, "Partitioned by month").
--
-- Indexes: the primary key (occurred_at, id) serves the whole trail newest first; by patient
-- and by actor the same order within the patient or actor. Three indexes instead of four, and
-- two of them grow only at their right edge.

ALTER TABLE audit_events RENAME TO audit_events_unpartitioned;

CREATE SEQUENCE audit_event_ids;
SELECT setval('audit_event_ids', coalesce((SELECT max(id) FROM audit_events_unpartitioned), 0) + 1, false);

CREATE TABLE audit_events (
    id                bigint NOT NULL DEFAULT nextval('audit_event_ids'),
    occurred_at       timestamptz NOT NULL DEFAULT now(),
    action            text NOT NULL CHECK (action IN ('create', 'read', 'update', 'deactivate', 'history', 'search')),
    patient_id        uuid,
    actor_id          text,
    actor_roles       text[] NOT NULL DEFAULT '{}',
    request_id        text,
    outcome           text NOT NULL,
    details           jsonb NOT NULL DEFAULT '{}',
    client_address    text,
    user_agent        text,
    client_request_id text,
    PRIMARY KEY (occurred_at, id)
) PARTITION BY RANGE (occurred_at);
ALTER SEQUENCE audit_event_ids OWNED BY audit_events.id;
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, occurred_at, id) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_events_by_actor ON audit_events (actor_id, occurred_at, id) WHERE actor_id IS NOT NULL;

-- Append-only, whoever asks: the row trigger is cloned to every partition; TRUNCATE triggers
-- are per table, so each partition gets its own when it is created.
CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_are_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_are_append_only();

-- Creates the monthly partitions from the month of `since` to `months_ahead` months after the
-- current one (UTC months), those that do not exist yet; returns how many it created. Runs with
-- the owner's rights (the service's runtime role owns nothing), and can do nothing else.
CREATE FUNCTION ensure_audit_partitions(since timestamptz DEFAULT now(), months_ahead integer DEFAULT 2)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = patients, pg_temp AS $$
DECLARE
    month timestamp := date_trunc('month', least(since, now()) AT TIME ZONE 'UTC');
    last timestamp := date_trunc('month', now() AT TIME ZONE 'UTC')
                      + make_interval(months => least(greatest(months_ahead, 0), 24));
    partition text;
    created integer := 0;
BEGIN
    WHILE month <= last LOOP
        partition := 'audit_events_' || to_char(month, 'YYYY_MM');
        IF to_regclass('patients.' || partition) IS NULL THEN
            EXECUTE format('CREATE TABLE patients.%I PARTITION OF patients.audit_events FOR VALUES FROM (%L) TO (%L)',
                           partition, month AT TIME ZONE 'UTC', (month + interval '1 month') AT TIME ZONE 'UTC');
            EXECUTE format('CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON patients.%I
                            FOR EACH STATEMENT EXECUTE FUNCTION patients.audit_events_are_append_only()', partition);
            created := created + 1;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN created;
END
$$;
REVOKE ALL ON FUNCTION ensure_audit_partitions(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_audit_partitions(timestamptz, integer) TO pms_patients_runtime;

-- The rows so far move into their months; the old table goes (its triggers refuse DELETE and
-- TRUNCATE, not DROP).
SELECT ensure_audit_partitions(coalesce((SELECT min(occurred_at) FROM audit_events_unpartitioned), now()));
INSERT INTO audit_events (id, occurred_at, action, patient_id, actor_id, actor_roles, request_id, outcome, details,
                          client_address, user_agent, client_request_id)
SELECT id, occurred_at, action, patient_id, actor_id, actor_roles, request_id, outcome, details,
       client_address, user_agent, client_request_id
FROM audit_events_unpartitioned;
DROP TABLE audit_events_unpartitioned;

GRANT SELECT, INSERT ON audit_events TO pms_patients_runtime;
GRANT USAGE ON SEQUENCE audit_event_ids TO pms_patients_runtime;
