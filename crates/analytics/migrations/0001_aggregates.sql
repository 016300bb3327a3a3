-- Analytics keeps what its aggregates need and nothing that identifies a patient: no names,
-- no contacts, no MRN. Per patient only sex, birth date and whether active (to count active
-- patients by sex and age band, which move as patients change and age), under the patient's
-- id (a pseudonym here: nothing in this schema says who it is).
CREATE TABLE patients (
    patient_id uuid PRIMARY KEY,
    sex text NOT NULL,
    birth_date date NOT NULL,
    active boolean NOT NULL,
    -- The patient version the row reflects: an older event never overwrites a newer one.
    version integer NOT NULL
);

CREATE INDEX patients_active ON patients (sex, birth_date) WHERE active;

-- Registrations per calendar day (UTC).
CREATE TABLE registrations_per_day (
    day date PRIMARY KEY,
    registrations bigint NOT NULL
);

-- Every event handled, recorded in the same transaction as its effect: a redelivered event
-- (a replay, a restart before the offsets were committed) finds its id here and changes nothing.
-- occurred_at (from the envelope) and processed_at (when it was applied, clock time, not
-- the transaction's start) give how far analytics runs behind (scripts/bench-events.sh).
CREATE TABLE processed_events (
    event_id uuid PRIMARY KEY,
    occurred_at timestamptz,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- When the last event was applied (one row).
CREATE TABLE freshness (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_event_at timestamptz
);
INSERT INTO freshness (id, last_event_at) VALUES (true, NULL);

DO $$
BEGIN
    CREATE ROLE pms_analytics_runtime NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created by another database of this cluster (roles are cluster-wide)
END
$$;

GRANT USAGE ON SCHEMA analytics TO pms_analytics_runtime;
GRANT SELECT, INSERT, UPDATE ON patients, registrations_per_day, freshness TO pms_analytics_runtime;
GRANT SELECT, INSERT ON processed_events TO pms_analytics_runtime;
