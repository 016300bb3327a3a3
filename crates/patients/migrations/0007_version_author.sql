-- Who wrote each version of a record (the user id of the request, as in its audit row), so a
-- record's history says who changed what. Versions written before this migration have none.
ALTER TABLE patient_versions ADD COLUMN recorded_by text;
