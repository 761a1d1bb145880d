//! What a buyer submits to `POST /api/orders`, and the rules a submission must meet before anything is
//! recorded: the body (an event and its cart lines) and the `Idempotency-Key`. Pure functions over the
//! outside input, shared by the gateway and the fuzz targets (`fuzz/`).

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::orders::CartLine;

/// Most lines in one cart.
pub const MAX_LINES: usize = 20;
/// Most units of one line.
pub const MAX_QUANTITY: i64 = 100;
/// Longest `Idempotency-Key` (as stored with the request).
pub const MAX_KEY_LEN: usize = 255;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitOrder {
    pub event_id: Uuid,
    #[schema(min_items = 1, max_items = 20)]
    pub items: Vec<SubmitItem>,
}

/// One cart line: exactly one of `ticket_category_id` and `merchandise_id` (the other absent or `null`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitItem {
    pub ticket_category_id: Option<Uuid>,
    pub merchandise_id: Option<Uuid>,
    pub quantity: i64,
}

// Written out: "exactly one of two fields" is a `oneOf` of two shapes, which the derive cannot express.
impl utoipa::PartialSchema for SubmitItem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        let line = |named: &str, other: &str| {
            let uuid = ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
            let quantity = ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1))
                .maximum(Some(MAX_QUANTITY));
            ObjectBuilder::new()
                .property(named, uuid)
                .property(other, ObjectBuilder::new().schema_type(Type::Null))
                .property("quantity", quantity)
                .required(named)
                .required("quantity")
                .additional_properties(Some(
                    AdditionalProperties::<utoipa::openapi::schema::Schema>::FreeForm(false),
                ))
                .build()
        };
        OneOfBuilder::new()
            .item(line("ticket_category_id", "merchandise_id"))
            .item(line("merchandise_id", "ticket_category_id"))
            .description(Some("One cart line: a ticket category or a merchandise item, and how many."))
            .into()
    }
}

impl ToSchema for SubmitItem {}

/// Why a submission is refused (the message is the one the buyer reads).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The cart of `body` as the stream carries it: lines of one product added up, each product once, in the
/// order first named.
pub fn cart(body: &SubmitOrder) -> Result<Vec<CartLine>, Refused> {
    if body.items.is_empty() || body.items.len() > MAX_LINES {
        return Err(Refused(format!("a cart has between 1 and {MAX_LINES} lines")));
    }
    let mut lines: Vec<CartLine> = Vec::with_capacity(body.items.len());
    for i in &body.items {
        if i.ticket_category_id.is_some() == i.merchandise_id.is_some() {
            return Err(Refused(
                "each line names exactly one of ticket_category_id and merchandise_id".into(),
            ));
        }
        if !(1..=MAX_QUANTITY).contains(&i.quantity) {
            return Err(Refused(format!("quantity must be between 1 and {MAX_QUANTITY}")));
        }
        let quantity = i.quantity as i32;
        match lines
            .iter_mut()
            .find(|l| l.ticket_category_id == i.ticket_category_id && l.merchandise_id == i.merchandise_id)
        {
            Some(line) => line.quantity += quantity,
            None => lines.push(CartLine {
                ticket_category_id: i.ticket_category_id,
                merchandise_id: i.merchandise_id,
                quantity,
            }),
        }
    }
    Ok(lines)
}

/// The `Idempotency-Key` header's value, trimmed, when it is 1–255 visible ASCII characters.
pub fn idempotency_key(raw: &[u8]) -> Result<&str, KeyRefused> {
    let key = std::str::from_utf8(raw).map_err(|_| KeyRefused::Invalid)?.trim();
    if key.is_empty() {
        return Err(KeyRefused::Missing);
    }
    if key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(KeyRefused::Invalid);
    }
    Ok(key)
}

/// Why an `Idempotency-Key` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefused {
    Missing,
    Invalid,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(category: Option<Uuid>, merch: Option<Uuid>, quantity: i64) -> SubmitItem {
        SubmitItem { ticket_category_id: category, merchandise_id: merch, quantity }
    }

    #[test]
    fn lines_of_one_product_add_up_and_bad_lines_are_refused() {
        let (c, m) = (Uuid::new_v4(), Uuid::new_v4());
        let body = SubmitOrder {
            event_id: Uuid::new_v4(),
            items: vec![item(Some(c), None, 2), item(None, Some(m), 1), item(Some(c), None, 3)],
        };
        let lines = cart(&body).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].ticket_category_id, lines[0].quantity), (Some(c), 5));
        for bad in
            [item(Some(c), Some(m), 1), item(None, None, 1), item(Some(c), None, 0), item(Some(c), None, 101)]
        {
            assert!(cart(&SubmitOrder { event_id: body.event_id, items: vec![bad] }).is_err());
        }
        assert!(cart(&SubmitOrder { event_id: body.event_id, items: vec![] }).is_err());
    }

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert_eq!(idempotency_key(b"  abc-123  "), Ok("abc-123"));
        assert_eq!(idempotency_key(b"   "), Err(KeyRefused::Missing));
        assert_eq!(idempotency_key("caf\u{e9}".as_bytes()), Err(KeyRefused::Invalid));
        assert_eq!(idempotency_key(b"a b"), Err(KeyRefused::Invalid));
        assert_eq!(idempotency_key(&[b'k'; 255]), Ok("k".repeat(255).as_str()));
        assert_eq!(idempotency_key(&[b'k'; 256]), Err(KeyRefused::Invalid));
        assert_eq!(idempotency_key(&[0xff, 0xfe]), Err(KeyRefused::Invalid));
    }
}
