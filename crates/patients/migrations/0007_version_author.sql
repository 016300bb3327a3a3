-- Who wrote each version of a record (the user id of the request, as in its audit row), and
-- why, when the writer said so (a deactivation's reason), so a record's history says who
-- changed what and why. Versions written before this migration have neither.
ALTER TABLE patient_versions ADD COLUMN recorded_by text, ADD COLUMN reason text;
