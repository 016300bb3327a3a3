-- The patients service's schema. The pool's search_path points at the `patients` schema,
-- so unqualified names below live there.

-- Eight-digit sequence behind medical record numbers (a Damm check digit is appended in Rust).
CREATE SEQUENCE mrn_seq START 10000000 MINVALUE 10000000 MAXVALUE 99999999 NO CYCLE;

CREATE TABLE patients (
    id             uuid PRIMARY KEY,
    mrn            text NOT NULL UNIQUE,
    given_name     text NOT NULL,
    family_name    text NOT NULL,
    birth_date     date NOT NULL,
    sex            text NOT NULL CHECK (sex IN ('female', 'male', 'other', 'unknown')),
    email          text,
    email_key      text,           -- lower-cased email: uniqueness and search ignore case
    phone          text,           -- E.164
    address        jsonb,
    active         boolean NOT NULL DEFAULT true,
    version        integer NOT NULL CHECK (version >= 1),
    registered_at  timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    -- Search support, derived from the names in Rust (see src/names.rs). Byte order ("C")
    -- so that prefix ranges and ordering use the same btree whatever the database locale.
    family_sort    text COLLATE "C" NOT NULL,
    given_sort     text COLLATE "C" NOT NULL,
    name_keys      text[] NOT NULL
);

-- An email belongs to at most one active patient.
CREATE UNIQUE INDEX patients_active_email_key ON patients (email_key) WHERE active AND email_key IS NOT NULL;
CREATE INDEX patients_name_keys ON patients USING gin (name_keys) WHERE active;
CREATE INDEX patients_sort ON patients (family_sort, given_sort, id) WHERE active;
CREATE INDEX patients_given_sort ON patients (given_sort, family_sort, id) WHERE active;
CREATE INDEX patients_birth_date ON patients (birth_date) WHERE active;
CREATE INDEX patients_phone ON patients (phone) WHERE active;

-- Every distinct folded family and given name with the search keys of its words: a typo in
-- a search is resolved to the names it may mean here (a few rows), and those names are then
-- read through the ordered indexes above, like exact matches. Entries are never removed; a
-- name nobody has any more simply finds no patient.
CREATE TABLE name_dictionary (
    name  text COLLATE "C" PRIMARY KEY,
    keys  text[] NOT NULL
);
CREATE INDEX name_dictionary_keys ON name_dictionary USING gin (keys);

-- Every state a patient record has been in, newest version last. A snapshot is the record
-- exactly as the API returned it at that version.
CREATE TABLE patient_versions (
    patient_id   uuid NOT NULL REFERENCES patients (id),
    version      integer NOT NULL,
    recorded_at  timestamptz NOT NULL,
    snapshot     jsonb NOT NULL,
    PRIMARY KEY (patient_id, version)
);

-- Who did what to which patient record, and when. Append-only: the triggers below refuse
-- every UPDATE, DELETE and TRUNCATE, whoever asks.
CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL DEFAULT now(),
    action       text NOT NULL CHECK (action IN ('create', 'read', 'update', 'deactivate', 'history', 'search')),
    patient_id   uuid,
    actor_id     text,
    actor_roles  text[] NOT NULL DEFAULT '{}',
    request_id   text,
    outcome      text NOT NULL,
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_patient ON audit_events (patient_id, occurred_at) WHERE patient_id IS NOT NULL;
CREATE INDEX audit_events_occurred ON audit_events (occurred_at);
CREATE INDEX audit_events_actor ON audit_events (actor_id, id) WHERE actor_id IS NOT NULL;

CREATE FUNCTION audit_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_are_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_are_append_only();
