-- The appointments service's schema: practitioners and their weekly hours and exceptions,
-- appointment types, appointments with their versions and audit trail, the outbox, and the
-- patient events already applied (docs/scheduling.md).

-- Exclusion constraints mixing `=` on a uuid with `&&` on a range need btree_gist's operator
-- classes; a trusted extension, installed here by the schema's owner.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA appointments;

CREATE TABLE practitioners (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    specialty text NOT NULL CHECK (length(specialty) BETWEEN 1 AND 100),
    email text,
    phone text,
    location text,
    -- IANA name, e.g. Europe/Madrid: working hours are wall-clock times in this zone.
    time_zone text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX practitioners_by_name ON practitioners (name, id);

-- The weekly pattern, in minutes after local midnight (ISO weekday 1 = Monday).
CREATE TABLE working_hours (
    practitioner_id uuid NOT NULL REFERENCES practitioners (id),
    weekday smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_minute smallint NOT NULL CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute smallint NOT NULL CHECK (end_minute BETWEEN 1 AND 1440),
    CHECK (end_minute > start_minute),
    PRIMARY KEY (practitioner_id, weekday, start_minute)
);

-- One day's change to the pattern: a day off (whole, or some hours of it), or extra hours.
CREATE TABLE schedule_exceptions (
    id uuid PRIMARY KEY,
    practitioner_id uuid NOT NULL REFERENCES practitioners (id),
    day date NOT NULL,
    kind text NOT NULL CHECK (kind IN ('off', 'extra')),
    start_minute smallint CHECK (start_minute BETWEEN 0 AND 1439),
    end_minute smallint CHECK (end_minute BETWEEN 1 AND 1440),
    reason text CHECK (length(reason) <= 500),
    CHECK ((start_minute IS NULL) = (end_minute IS NULL)),
    CHECK (kind = 'off' OR start_minute IS NOT NULL),
    CHECK (end_minute > start_minute)
);
CREATE INDEX schedule_exceptions_by_day ON schedule_exceptions (practitioner_id, day);

CREATE TABLE appointment_types (
    code text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9-]{0,39}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    minutes integer NOT NULL CHECK (minutes BETWEEN 5 AND 480)
);
INSERT INTO appointment_types (code, name, minutes) VALUES
    ('consultation', 'Consultation', 30),
    ('first-visit', 'First visit', 45),
    ('follow-up', 'Follow-up', 15),
    ('procedure', 'Procedure', 60);

-- An appointment holds its practitioner's and its patient's time from `starts_at` up to (not
-- including) `ends_at` while it is booked, checked in or completed. PostgreSQL itself refuses
-- an overlap (the two exclusion constraints), so no interleaving of requests can double-book;
-- `[)` ranges let one appointment end exactly when the next starts.
CREATE TABLE appointments (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    practitioner_id uuid NOT NULL REFERENCES practitioners (id),
    type text REFERENCES appointment_types (code),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status text NOT NULL DEFAULT 'booked'
        CHECK (status IN ('booked', 'checked_in', 'completed', 'cancelled', 'no_show')),
    reason text CHECK (length(reason) <= 500),
    cancel_reason text CHECK (length(cancel_reason) <= 500),
    version integer NOT NULL DEFAULT 1,
    booked_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK (ends_at > starts_at),
    CONSTRAINT appointments_practitioner_overlap EXCLUDE USING gist
        (practitioner_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE (status IN ('booked', 'checked_in', 'completed')),
    CONSTRAINT appointments_patient_overlap EXCLUDE USING gist
        (patient_id WITH =, tstzrange(starts_at, ends_at) WITH &&)
        WHERE (status IN ('booked', 'checked_in', 'completed'))
);
CREATE INDEX appointments_by_practitioner ON appointments (practitioner_id, starts_at, id);
CREATE INDEX appointments_by_patient ON appointments (patient_id, starts_at, id);
CREATE INDEX appointments_by_start ON appointments (starts_at, id);

-- Every version of an appointment (a reschedule keeps where it was).
CREATE TABLE appointment_versions (
    appointment_id uuid NOT NULL REFERENCES appointments (id),
    version integer NOT NULL,
    recorded_at timestamptz NOT NULL,
    snapshot jsonb NOT NULL,
    PRIMARY KEY (appointment_id, version)
);

-- Who booked, read, listed or changed which appointment (kit::trail; never names or reasons).
CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    action text NOT NULL,
    -- The appointment.
    subject_id uuid,
    patient_id uuid,
    outcome text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}',
    request_id text,
    actor_id text,
    actor_roles text[] NOT NULL DEFAULT '{}',
    client_address text,
    user_agent text
);
CREATE INDEX audit_events_by_appointment ON audit_events (subject_id, at);
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, at);

-- The transactional outbox (kit::outbox), as in the patients service.
CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sink text NOT NULL,
    topic text NOT NULL,
    key text NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending ON outbox (sink, id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Patient events applied (a deactivation cancels future appointments once).
CREATE TABLE processed_events (
    event_id uuid PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- The role the appointments service runs as (its login user is made a member by `pms migrate`).
DO $$
BEGIN
    CREATE ROLE pms_appointments_runtime NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created by another database of this cluster (roles are cluster-wide)
END
$$;

GRANT USAGE ON SCHEMA appointments TO pms_appointments_runtime;
GRANT SELECT, INSERT, UPDATE ON practitioners, appointments, appointment_types TO pms_appointments_runtime;
GRANT SELECT, INSERT, DELETE ON working_hours, schedule_exceptions TO pms_appointments_runtime;
GRANT SELECT, INSERT ON appointment_versions, audit_events, processed_events TO pms_appointments_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO pms_appointments_runtime;
