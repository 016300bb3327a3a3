-- The role the auth service runs as (its login user is made a member by `pms migrate`): it
-- owns nothing, so it cannot disable the trail's triggers, and on the auth trail it may only
-- add and read rows. Migrations run as the owner.
DO $$
BEGIN
    CREATE ROLE pms_auth_runtime NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created by another database of this cluster (roles are cluster-wide)
END
$$;

GRANT USAGE ON SCHEMA auth TO pms_auth_runtime;
GRANT SELECT, INSERT, UPDATE ON users, signing_keys TO pms_auth_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_tokens, login_attempts, user_not_before, revoked_sessions
    TO pms_auth_runtime;
GRANT SELECT, INSERT ON auth_events TO pms_auth_runtime;
