-- A claim sets only `lease_until`: a message stays `queued` while a dispatcher holds it, and
-- the delivery log shows it as `sending` while the lease runs (store.rs). No column an index
-- reads (nor one in an index's predicate) changes, so the claim is a heap-only (HOT) update
-- that writes no index entry; when `status` changed too, every claim wrote five (one per
-- index), as many as queuing the message. HOT needs the new row version on the old one's page:
-- a booking queues six rows (a confirmation and two reminders, on two channels) and its
-- confirmations are claimed at once, a third of the rows taking as much room again, so pages
-- keep 30 % free (at 20 %, a third of the claims in the scheduling benchmark found no room).
UPDATE messages SET status = 'queued' WHERE status = 'sending';
ALTER TABLE messages DROP CONSTRAINT messages_status_check,
    ADD CONSTRAINT messages_status_check CHECK (status IN ('queued', 'sent', 'failed', 'cancelled', 'skipped'));
DROP INDEX messages_due;
CREATE INDEX messages_due ON messages (due_at) WHERE status = 'queued';
ALTER TABLE messages SET (fillfactor = 70);
