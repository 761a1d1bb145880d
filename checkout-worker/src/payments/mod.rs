//! Payments after checkout: Midtrans notifications applied exactly once ([`apply`]), the webhook stream
//! with retries and dead letters ([`processor`]), e-ticket issuing ([`tickets`]) and reconciliation with
//! Midtrans for late or missing notifications and refunds owed ([`reconcile`]), and resolving payments
//! under review ([`review`]).

pub mod apply;
pub mod processor;
pub mod reconcile;
pub mod review;
pub mod tickets;
