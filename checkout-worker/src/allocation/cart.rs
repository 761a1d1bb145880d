//! One cart against the batch's locked rows: whether it can be allocated, and what it takes.

use std::collections::HashMap;

use pipeline::{
    orders::{CheckoutRequest, ProductId},
    states::Reason,
};
use uuid::Uuid;

/// A product row as locked for this batch; `remaining` goes down as carts are allocated.
pub(super) struct Product {
    pub event_id: Option<Uuid>,
    pub name: String,
    pub price: i64,
    pub remaining: i32,
    pub max_per_order: i32,
    pub on_sale: bool,
    /// A ticket category (counts towards the per-buyer limit) rather than merchandise.
    pub ticket: bool,
}

/// An event as the batch sees it.
pub(super) struct EventRow {
    pub id: Uuid,
    pub max_tickets_per_buyer: i32,
    pub on_sale: bool,
}

/// Checks one cart of `event_id` (the recorded request's event) against the locked rows, its buyer
/// already holding `already` ticket units for the event; returns the number of ticket units it takes.
pub(super) fn check(
    r: &CheckoutRequest,
    event_id: Uuid,
    event: Option<&EventRow>,
    products: &HashMap<ProductId, Product>,
    already: i64,
) -> Result<i64, Reason> {
    let event = event.ok_or(Reason::UnknownItem)?;
    if !event.on_sale {
        return Err(Reason::NotOnSale);
    }
    if r.items.is_empty() {
        return Err(Reason::UnknownItem);
    }
    let mut wanted: HashMap<ProductId, i32> = HashMap::new();
    let mut tickets = 0i64;
    for line in &r.items {
        let pk = line.product().ok_or(Reason::UnknownItem)?;
        let p = products.get(&pk).ok_or(Reason::UnknownItem)?;
        if p.event_id.is_some_and(|e| e != event_id) || (p.ticket && p.event_id != Some(event_id)) {
            return Err(Reason::UnknownItem);
        }
        if !p.on_sale {
            return Err(Reason::NotOnSale);
        }
        if line.quantity < 1 {
            return Err(Reason::UnknownItem);
        }
        let total = wanted.entry(pk).or_default();
        *total += line.quantity;
        if *total > p.max_per_order {
            return Err(Reason::PerOrderLimit);
        }
        if p.ticket {
            tickets += i64::from(line.quantity);
        }
    }
    if already + tickets > i64::from(event.max_tickets_per_buyer) {
        return Err(Reason::PerBuyerLimit);
    }
    for (pk, qty) in &wanted {
        if products[pk].remaining < *qty {
            return Err(Reason::SoldOut);
        }
    }
    Ok(tickets)
}
