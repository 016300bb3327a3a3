-- The role the patients service runs as (its login user is made a member by `pms migrate`):
-- it owns nothing, so it cannot disable the audit triggers, and on the audit trail and the
-- version history it may only add and read rows. Migrations run as the owner.
DO $$
BEGIN
    CREATE ROLE pms_patients_runtime NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created by another database of this cluster (roles are cluster-wide)
END
$$;

GRANT USAGE ON SCHEMA patients TO pms_patients_runtime;
GRANT SELECT, INSERT, UPDATE ON patients TO pms_patients_runtime;
GRANT SELECT, INSERT ON patient_versions, name_dictionary, audit_events TO pms_patients_runtime;
GRANT USAGE ON SEQUENCE mrn_seq TO pms_patients_runtime;
