//! The contracts between the processes: what gateways put on the Redis streams, what workers read back,
//! and what workers publish to the buyers' sockets. Every process that speaks to another through Redis
//! depends on this crate, and on nothing of the other's. The stored states are part of that contract:
//! gateways and workers read and write the same rows.
//!
//! # Layout
//!
//! - [`orders`]: the order stream's entry (a checkout request and its cart lines), appending to it, its
//!   backlog, and the result published for each decided request.
//! - [`webhooks`]: the webhook stream's entry (a verified Midtrans notification, raw) and appending it.
//! - [`group`]: one consumer of a stream's consumer group: read, take over a dead consumer's entries,
//!   acknowledge; one append with one trimming rule; the backlog of a group.
//! - [`submission`]: what a buyer submits (the cart body, the Idempotency-Key) and the rules it must meet.
//! - [`states`]: the states of requests, orders, payments and tickets (and why a request was rejected),
//!   as PostgreSQL stores them: the one place their names are spelled.

pub mod group;
pub mod orders;
pub mod states;
pub mod submission;
pub mod webhooks;
