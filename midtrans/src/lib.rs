//! Midtrans, as this system talks to it: the HTTP client (Snap, Core API QRIS charge, status, cancel,
//! expire, refund), notifications (lenient parsing, the SHA-512 signature, what a status means) and the
//! time and money formats Midtrans uses.
//!
//! Facts follow `shared/midtrans.md`: errors can arrive in the body's `status_code` under HTTP 200; the
//! signature is over the notification's exact strings; amounts are integer rupiah written `"150000.00"`;
//! timestamps are Western Indonesian Time (UTC+7) without a zone suffix.

pub mod args;
pub mod client;
pub mod notification;
pub mod time;

pub use args::MidtransArgs;
pub use client::{Client, ClientConfig, Error};
pub use notification::{Notification, Outcome, format_amount, parse_amount, signature, verify_signature};

/// Installs the process-wide rustls crypto provider (ring) that the HTTP client uses. Every binary that
/// builds a [`Client`] calls this once at start; calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
