-- New patients' search keys go to the GIN index's pending list (fast inserts); when the list
-- passes gin_pending_list_limit (4 MB), the insert that finds it full merges it into the index,
-- which took 60-70 ms: every registration queued behind that batch waited (create p99 71 ms
-- at 4 500/s). The patients service merges the list in the background instead, every half
-- second after registrations, through this function: it runs with the owner's rights (the
-- runtime role owns nothing) and can do nothing else.
CREATE FUNCTION clean_name_keys_pending_list() RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = patients, pg_temp AS $$
    SELECT gin_clean_pending_list('patients.patients_name_keys'::regclass);
$$;
REVOKE ALL ON FUNCTION clean_name_keys_pending_list() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION clean_name_keys_pending_list() TO pms_patients_runtime;
