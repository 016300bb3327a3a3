-- The notifications service's schema: what it knows of patients (contacts, from patient
-- events) and appointments (from appointment events), each patient's contact preferences, the
-- messages (one row per message and channel: a durable queue with due times, and the delivery
-- log), the audit trail of who read the log, and the events already applied
-- (docs/notifications.md).

CREATE TABLE contacts (
    patient_id uuid PRIMARY KEY,
    given_name text NOT NULL,
    family_name text NOT NULL,
    email text,
    phone text,
    active boolean NOT NULL,
    version integer NOT NULL
);

-- Absent row: both channels allowed.
CREATE TABLE preferences (
    patient_id uuid PRIMARY KEY,
    email boolean NOT NULL,
    sms boolean NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);

CREATE TABLE appointments (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    practitioner_name text NOT NULL,
    time_zone text NOT NULL,
    location text,
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    status text NOT NULL,
    version integer NOT NULL
);

-- One message on one channel. `queued` rows are the queue (sent from `due_at` on); `sending`
-- rows are claimed by a dispatcher until `lease_until` (a dispatcher that died leaves them to
-- be claimed again); `sent`, `failed`, `cancelled` and `skipped` rows are the delivery log.
CREATE TABLE messages (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL,
    appointment_id uuid,
    kind text NOT NULL CHECK (kind IN ('welcome', 'confirmation', 'rescheduled', 'cancellation', 'reminder')),
    channel text NOT NULL CHECK (channel IN ('email', 'sms')),
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'cancelled', 'skipped')),
    due_at timestamptz NOT NULL,
    lease_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    recipient text,
    subject text,
    provider_id text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at timestamptz,
    -- What makes a message unique (an event and channel; an appointment version, lead time and
    -- channel for reminders): a redelivered event never queues a message twice.
    dedupe_key text NOT NULL UNIQUE
);
CREATE INDEX messages_due ON messages (due_at) WHERE status IN ('queued', 'sending');
CREATE INDEX messages_by_patient ON messages (patient_id, due_at DESC, id);
CREATE INDEX messages_by_appointment ON messages (appointment_id) WHERE appointment_id IS NOT NULL;

CREATE TABLE processed_events (
    event_id uuid PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Who read the delivery log or changed preferences (kit::trail).
CREATE TABLE audit_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    action text NOT NULL,
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
CREATE INDEX audit_events_by_patient ON audit_events (patient_id, at);

DO $$
BEGIN
    CREATE ROLE pms_notifications_runtime NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created by another database of this cluster (roles are cluster-wide)
END
$$;

GRANT USAGE ON SCHEMA notifications TO pms_notifications_runtime;
GRANT SELECT, INSERT, UPDATE ON contacts, preferences, appointments, messages TO pms_notifications_runtime;
GRANT SELECT, INSERT ON processed_events, audit_events TO pms_notifications_runtime;
