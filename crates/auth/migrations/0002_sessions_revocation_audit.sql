-- Revocation that takes effect within seconds, and refresh-token families with an end.

-- A revoked signing key is no longer published, so tokens it signed stop verifying as soon
-- as verifiers refresh their keys (seconds), not when they expire.
ALTER TABLE signing_keys ADD COLUMN revoked_at timestamptz;

-- When the family (the login) started: a family lives at most the absolute session lifetime.
ALTER TABLE refresh_tokens ADD COLUMN family_started_at timestamptz;
UPDATE refresh_tokens t SET family_started_at = f.started
FROM (SELECT family_id, min(issued_at) AS started FROM refresh_tokens GROUP BY family_id) f
WHERE t.family_id = f.family_id;
ALTER TABLE refresh_tokens ALTER COLUMN family_started_at SET NOT NULL;

-- Access tokens issued to a user before `not_before` are refused (disabled, roles or
-- password changed). Verifiers learn these through GET /auth/revocations.
CREATE TABLE user_not_before (
    user_id     uuid PRIMARY KEY REFERENCES users (id),
    not_before  timestamptz NOT NULL
);

-- Sessions (refresh-token families, the `sid` of access tokens) ended by logout or by the
-- reuse of a refresh token: their access tokens are refused too.
CREATE TABLE revoked_sessions (
    family_id   uuid PRIMARY KEY,
    revoked_at  timestamptz NOT NULL
);
CREATE INDEX revoked_sessions_at ON revoked_sessions (revoked_at);
CREATE INDEX user_not_before_at ON user_not_before (not_before);

-- The durable trail of authentication: logins (succeeded, failed, locked out), logouts,
-- stolen refresh tokens, password changes and every change an admin makes to a user.
-- Append-only, like the patients' audit trail. Never holds passwords, tokens or emails.
CREATE TABLE auth_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    action       text NOT NULL CHECK (action IN (
                     'login', 'logout', 'refresh_reuse', 'password_change', 'user_create', 'user_update')),
    outcome      text NOT NULL CHECK (outcome IN ('ok', 'failed', 'locked', 'busy')),
    user_id      uuid,           -- the account concerned, when known
    actor_id     uuid,           -- who acted: the user, or the admin changing a user
    address      text,           -- the client's address
    user_agent   text,           -- the client's User-Agent
    details      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX auth_events_user ON auth_events (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX auth_events_occurred ON auth_events (occurred_at);

CREATE FUNCTION auth_events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'auth_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER auth_events_no_update_or_delete BEFORE UPDATE OR DELETE ON auth_events
    FOR EACH ROW EXECUTE FUNCTION auth_events_are_append_only();
CREATE TRIGGER auth_events_no_truncate BEFORE TRUNCATE ON auth_events
    FOR EACH STATEMENT EXECUTE FUNCTION auth_events_are_append_only();
