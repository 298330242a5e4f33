-- otpfleet schema version 3: what every replica shares besides the accounts, in one row.
-- The server secret: every replica derives the same keys from it, so a verification token one
-- replica sealed opens on another and an OTP's keyed hash is the same on all. The admin
-- preferences: a redemption reads `auto_approve` inside its own statement, so it follows the
-- preference as it stood when it committed, on every replica.
CREATE TABLE server (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret bytea NOT NULL CHECK (length(secret) = 32),
    otp_validity_hours integer NOT NULL,
    auto_approve boolean NOT NULL
);
