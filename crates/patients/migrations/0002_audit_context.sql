-- Every audit row says where the access came from: the client's address and user agent, and
-- the client's own request id beside the id the gateway assigned (which is the correlation
-- key; a client's id is never trusted as one).
ALTER TABLE audit_events ADD COLUMN client_address text;
ALTER TABLE audit_events ADD COLUMN user_agent text;
ALTER TABLE audit_events ADD COLUMN client_request_id text;
