//! otpfleet's one client of the OTP contract, shared by the fleet emulator and the load
//! scenarios: the transport seam and our HTTP/1.1 pool ([`transport`]), the one answer type
//! ([`Answer`]), typed calls whose paths come from `protocol`'s route table ([`calls`]), the
//! admin client that sets a server up ([`admin`]), and the admins' bounded [`Desk`].
//!
//! It depends on `protocol` only (never on the server): a crate that embeds the reference
//! server provides its own in-process [`Transport`].

pub mod admin;
mod answer;
pub mod calls;
mod desk;
pub mod target;
mod ticks;
pub mod transport;

pub use admin::{AdminClient, AdminError, CallError, Caller, Ticket};
pub use answer::Answer;
pub use desk::{DESK_MEMORY, Desk};
pub use target::{Target, TargetError, tls_config};
pub use ticks::tick_intervals;
pub use transport::{ApiRequest, HttpTransport, Spread, Transport, TransportError};
