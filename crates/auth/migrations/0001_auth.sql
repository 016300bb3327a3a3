-- The auth service's schema (search_path points at `auth`).

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    email_key      text NOT NULL UNIQUE,          -- lower-cased email
    display_name   text NOT NULL,
    password_hash  text NOT NULL,                 -- Argon2id, PHC string
    roles          text[] NOT NULL CHECK (
                       cardinality(roles) > 0
                       AND roles <@ ARRAY['admin', 'receptionist', 'clinician', 'billing', 'analyst']),
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

-- Refresh tokens are opaque random strings; only their SHA-256 is stored. Each login starts a
-- family; each refresh uses one token and issues the next of the same family. Presenting a
-- used token again revokes the whole family (it was stolen, or the client is broken).
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    family_id   uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id),
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Ed25519 keys that sign access tokens. The newest key without `retired_at` signs; retired
-- keys stay published in the JWKS until every token they signed has expired.
CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    private_key  bytea NOT NULL,                  -- PKCS#8; secret
    public_key   bytea NOT NULL,
    created_at   timestamptz NOT NULL,
    retired_at   timestamptz
);

-- Login attempts, for the brute-force limits (per account and per client address).
CREATE TABLE login_attempts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_key  text NOT NULL,
    address    text NOT NULL,
    succeeded  boolean NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_account ON login_attempts (email_key, at);
CREATE INDEX login_attempts_address ON login_attempts (address, at);
