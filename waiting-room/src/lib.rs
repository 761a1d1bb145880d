//! The virtual waiting room in front of each event's sale.
//!
//! # Layout
//!
//! - [`settings`]: the per-event knobs (admission rate, max active, pause, token lifetime, presence grace),
//!   stored in PostgreSQL and changed by admins at runtime.

pub mod settings;
