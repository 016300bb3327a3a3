-- The transactional outbox (kit::outbox): the events of each patient write are inserted in the
-- write's own transaction, one row per sink ('kafka': topic patients.v1; 'billing': the gRPC
-- call that opens the patient's billing account), and relayed after the commit.
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

-- What each relay pass reads: a sink's pending rows in commit-id order.
CREATE INDEX outbox_pending ON outbox (sink, id) WHERE published_at IS NULL;
-- What pruning deletes: published rows past their keep time.
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO pms_patients_runtime;
