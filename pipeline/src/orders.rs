//! The order stream: gateways append each accepted checkout request (after recording it in PostgreSQL),
//! checkout workers read it as one consumer group (`checkout`) and publish each decision as an
//! [`OrderResult`] to every gateway, which pushes it to the buyer's sockets.

use fred::clients::Pool;
use keyspace::{Keyspace, STREAM_PARTITIONS};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::states::{Reason, RequestStatus};

/// The consumer group of the checkout workers.
pub const GROUP: &str = "checkout";
/// Field holding the request's JSON in each stream entry.
pub const FIELD: &str = "request";

/// One line of a cart: exactly one of the two ids is set (checked at intake and again here).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub ticket_category_id: Option<Uuid>,
    pub merchandise_id: Option<Uuid>,
    pub quantity: i32,
}

/// A checkout request as it travels on the order stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutRequest {
    pub request_id: Uuid,
    pub user_id: Uuid,
    pub event_id: Uuid,
    pub items: Vec<CartLine>,
}

/// What a cart line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProductId {
    Category(Uuid),
    Merchandise(Uuid),
}

impl CartLine {
    /// The product this line names; `None` when the line names both or neither (checked at intake).
    pub fn product(&self) -> Option<ProductId> {
        match (self.ticket_category_id, self.merchandise_id) {
            (Some(id), None) => Some(ProductId::Category(id)),
            (None, Some(id)) => Some(ProductId::Merchandise(id)),
            _ => None,
        }
    }
}

/// What the gateways push to the buyer's sockets (`order_result`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    pub event: Uuid,
    pub visitor: Option<Uuid>,
    pub user: Uuid,
    pub request_id: Uuid,
    /// `confirmed` or `rejected`.
    pub status: RequestStatus,
    pub order_id: Option<Uuid>,
    pub reason: Option<Reason>,
}

/// The partition of the order stream that carries `event`'s requests: all of one event's requests travel
/// in one stream, in the order they were accepted, and different events spread over the partitions.
pub fn partition(event: Uuid) -> usize {
    (event.as_u128() % STREAM_PARTITIONS as u128) as usize
}

/// The stream partition `request` goes to.
fn stream_of(keys: &Keyspace, request: &CheckoutRequest) -> String {
    keys.orders_stream(partition(request.event_id))
}

/// Appends one accepted request to its event's partition; returns the entry id.
pub async fn append(
    redis: &Pool,
    keys: &Keyspace,
    request: &CheckoutRequest,
) -> Result<String, fred::error::Error> {
    crate::group::append(redis, stream_of(keys, request), entry(request)).await
}

/// A request's stream entry: its JSON under [`FIELD`].
fn entry(request: &CheckoutRequest) -> Vec<(&'static str, String)> {
    vec![(FIELD, serde_json::to_string(request).expect("requests serialise"))]
}

/// [`append`] for many requests in one Redis round trip; one result per request, in order.
pub async fn append_many(
    redis: &Pool,
    keys: &Keyspace,
    requests: &[&CheckoutRequest],
) -> Vec<Result<String, fred::error::Error>> {
    let entries = requests.iter().map(|r| (stream_of(keys, r), entry(r))).collect();
    crate::group::append_many(redis, entries).await
}

/// Requests accepted but not yet decided, over every partition: entries never delivered to a worker (the
/// group's lag) plus entries delivered but not acknowledged. Gateways refuse new submissions and the admission controller
/// slows down when this grows.
pub async fn backlog(redis: &Pool, keys: &Keyspace) -> Result<i64, fred::error::Error> {
    let streams = (0..STREAM_PARTITIONS).map(|p| keys.orders_stream(p));
    crate::group::backlog_of_all(redis, streams, GROUP).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_spread_over_every_partition() {
        let used: std::collections::HashSet<usize> = (0..200).map(|_| partition(Uuid::now_v7())).collect();
        assert_eq!(used.len(), STREAM_PARTITIONS);
        let event = Uuid::new_v4();
        assert_eq!(partition(event), partition(event));
    }
}
