//! State and enum names of the contract. Every enum serializes as its snake_case name, and an
//! unknown name is refused by serde with the list of accepted ones.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name of this value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses a wire name (exact, lower case).
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            /// The accepted wire names, for error messages.
            pub fn expected() -> String {
                [$($text),+].join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// The licence of a resource account. Only `pro` accounts can get an OTP.
    License { Pro = "pro", Basic = "basic" }
);

wire_enum!(
    /// Whether an account is ready to sign in. Only `no_action_needed` accounts can get an OTP.
    Readiness {
        NoActionNeeded = "no_action_needed",
        NeedsLicense = "needs_license",
        PasswordExpired = "password_expired",
        SignInBlocked = "sign_in_blocked",
    }
);

wire_enum!(
    /// Where an account is in OTP provisioning.
    ///
    /// `otp_approved` is ours: between the admin's approval and the console collecting its
    /// credentials the account is neither awaiting approval nor signed in.
    Provisioning {
        NotProvisioned = "not_provisioned",
        OtpGenerated = "otp_generated",
        AwaitingOtpApproval = "awaiting_otp_approval",
        OtpApproved = "otp_approved",
        OtpRejected = "otp_rejected",
        OtpExpired = "otp_expired",
        SignedIn = "signed_in",
    }
);

wire_enum!(
    /// The status of a console's sign-in request (a redeemed OTP).
    RequestStatus {
        AwaitingApproval = "awaiting_approval",
        Approved = "approved",
        Rejected = "rejected",
        Expired = "expired",
        SignedIn = "signed_in",
    }
);

wire_enum!(
    /// Why an admin rejected a request: a fixed list.
    RejectReason {
        UnrecognizedDevice = "unrecognized_device",
        WrongRoom = "wrong_room",
        DuplicateRequest = "duplicate_request",
        SecurityConcern = "security_concern",
        Other = "other",
    }
);

wire_enum!(
    /// What an audit log entry records.
    AuditAction {
        /// An account was created or updated by an import.
        AccountImported = "account_imported",
        /// A batch of OTPs was generated (its `otp_generated` entries come just before it).
        BatchCreated = "batch_created",
        /// An OTP was generated for an account (replacing any earlier one).
        OtpGenerated = "otp_generated",
        /// A batch export was downloaded, with or without passwords.
        BatchExported = "batch_exported",
        /// A console redeemed an OTP.
        OtpRedeemed = "otp_redeemed",
        /// A request was approved (by an admin, or at once with auto approval).
        RequestApproved = "request_approved",
        /// A request was rejected, with its reason.
        RequestRejected = "request_rejected",
        /// A console collected its credentials.
        CredentialsHandedOver = "credentials_handed_over",
        /// A console signed in by manual setup.
        ManualSignIn = "manual_sign_in",
        /// The preferences changed.
        PreferencesChanged = "preferences_changed",
        /// An OTP (or the request made with it) expired before sign-in.
        OtpExpired = "otp_expired",
        /// An admin token was added (`otpfleet admin-token add`).
        AdminTokenAdded = "admin_token_added",
        /// An admin token was revoked (`otpfleet admin-token revoke`).
        AdminTokenRevoked = "admin_token_revoked",
    }
);

wire_enum!(
    /// How the account passwords of an OTP batch are set.
    PasswordMode {
        /// The account's password is reset to a new random one.
        AutoGenerate = "auto_generate",
        /// The admin uploads `upn,password` lines; existing passwords are kept.
        FromCsv = "from_csv",
    }
);

wire_enum!(
    /// Why an account was left out of an OTP batch.
    RefusalReason {
        NeedsLicense = "needs_license",
        PasswordExpired = "password_expired",
        SignInBlocked = "sign_in_blocked",
        BasicLicense = "basic_license",
        MissingPassword = "missing_password",
    }
);

impl Readiness {
    /// The refusal an account with this readiness gets, if any.
    pub fn refusal(self) -> Option<RefusalReason> {
        match self {
            Readiness::NoActionNeeded => None,
            Readiness::NeedsLicense => Some(RefusalReason::NeedsLicense),
            Readiness::PasswordExpired => Some(RefusalReason::PasswordExpired),
            Readiness::SignInBlocked => Some(RefusalReason::SignInBlocked),
        }
    }
}
