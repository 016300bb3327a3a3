-- One billing account per patient. Opening is idempotent by patient id (the unique key), so
-- the patients service's outbox relay may call CreateBillingAccount again after a crash or a
-- timeout without opening a second account.
CREATE SEQUENCE account_number_seq;

CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    number text NOT NULL UNIQUE,
    patient_id uuid NOT NULL UNIQUE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
    email text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
    opened_at timestamptz NOT NULL DEFAULT now()
);

-- The role the billing service runs as (its login user is made a member by `pms migrate`).
DO $$
BEGIN
    CREATE ROLE pms_billing_runtime NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created by another database of this cluster (roles are cluster-wide)
END
$$;

GRANT USAGE ON SCHEMA billing TO pms_billing_runtime;
GRANT SELECT, INSERT ON accounts TO pms_billing_runtime;
GRANT USAGE ON SEQUENCE account_number_seq TO pms_billing_runtime;
