-- otpfleet schema version 4: batch exports any replica can serve, and word of changed requests.
--
-- A batch's export (its OTPs and passwords, in plaintext) is kept here until its download
-- window closes, so that the admin's next request may reach any replica; the sweeper then
-- clears `rows` (the row stays, so a late download is told the export expired, not that the
-- batch never was). The embedded server keeps exports in memory only; here they are state the
-- replicas share, for at most the window (`serve --export-minutes`).
CREATE TABLE batches (
    id bigint PRIMARY KEY,
    export_expires_ms bigint NOT NULL,
    -- [{"upn", "display_name", "otp", "expires_ms", "password"}, …]; NULL once purged.
    rows jsonb
);

-- When the verification token a request was made with was issued: with the device, it names
-- the token, so the console's own redemption sent again (its answer lost) is answered with its
-- request instead of being refused as `otp_already_used`.
ALTER TABLE otps ADD COLUMN verified_ms bigint;

-- Every change of a request (a decision, a hand-over, a regeneration or manual sign-in that
-- withdraws it) tells every replica listening, at commit: a replica answers polls from a cache
-- of the requests it has read, and drops an entry when it hears of its change.
-- A redemption (no request before it) calls nothing: the WHEN is checked without the function.
CREATE FUNCTION otpfleet_request_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('otpfleet_requests_' || current_schema(), OLD.request_id::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER otps_request_changed AFTER UPDATE OR DELETE ON otps
    FOR EACH ROW WHEN (OLD.request_id IS NOT NULL)
    EXECUTE FUNCTION otpfleet_request_changed();
