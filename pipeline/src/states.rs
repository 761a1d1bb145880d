//! The states a checkout request, an order, a payment and a ticket can be in, as PostgreSQL stores them
//! (a `text` column under a CHECK constraint that lists the same values; a test compares the two) and as
//! the API shows them. Code names a state only through these enums; the strings live here alone.

use std::{fmt, str::FromStr};

use sqlx::{
    Decode, Encode, Postgres, Type,
    encode::IsNull,
    error::BoxDynError,
    postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef},
};

/// A stored state this build does not know (a newer schema, or a row written by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownState {
    pub kind: &'static str,
    pub value: String,
}

/// Declares a state enum with its stored names, its text mapping and its PostgreSQL `text` encoding.
macro_rules! stored_states {
    ($(#[doc = $doc:literal])* $name:ident ($kind:literal) { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[doc = $doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        // Written out rather than derived: the derive does not see a `rename` that comes from a macro, and
        // would publish the variant names instead of the stored ones.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!($($doc, "\n",)*).trim()))
                    .enum_values(Some([$($text,)+]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            /// Every state, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored (and shown) name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, UnknownState> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownState { kind: $kind, value: s.to_owned() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for $name {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
        }

        impl Encode<'_, Postgres> for $name {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<Postgres>>::encode(self.as_str(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<Postgres>>::decode(value)?.parse()?)
            }
        }
    };
}

stored_states! {
    /// An event (`events.status`): only published events are shown and sold.
    EventStatus ("event status") {
        Draft = "draft",
        Published = "published",
        Cancelled = "cancelled",
    }
}

stored_states! {
    /// A checkout request (`order_requests.status`): recorded at intake, then decided once by a worker.
    RequestStatus ("request status") {
        Queued = "queued",
        Confirmed = "confirmed",
        Rejected = "rejected",
    }
}

stored_states! {
    /// Why a checkout request was rejected (`order_requests.reason`).
    Reason ("rejection reason") {
        SoldOut = "sold_out",
        PerOrderLimit = "per_order_limit",
        PerBuyerLimit = "per_buyer_limit",
        NotOnSale = "not_on_sale",
        UnknownItem = "unknown_item",
        /// The buyer sent more requests than the per-buyer rate allows (the admission is given back).
        RateLimited = "rate_limited",
        /// Appended too many times without a decision.
        InternalError = "internal_error",
    }
}

stored_states! {
    /// An order (`orders.status`).
    OrderStatus ("order status") {
        /// Holds its units until `expires_at`.
        PendingPayment = "pending_payment",
        /// Its payment is being checked (fraud challenge, amount mismatch): keeps its hold.
        PaymentReview = "payment_review",
        Paid = "paid",
        Expired = "expired",
        Cancelled = "cancelled",
        Refunded = "refunded",
        PartiallyRefunded = "partially_refunded",
    }
}

stored_states! {
    /// A Midtrans payment attempt (`payments.status`).
    PaymentStatus ("payment status") {
        Pending = "pending",
        /// Card payment held by fraud detection.
        Challenge = "challenge",
        Paid = "paid",
        Failed = "failed",
        Expired = "expired",
        Cancelled = "cancelled",
        /// Money in that the order cannot take: the reconciler refunds it.
        RefundPending = "refund_pending",
        Refunded = "refunded",
        PartiallyRefunded = "partially_refunded",
        /// A counted payment the bank took back.
        Reversed = "reversed",
        /// Reported with an amount we did not charge: waits for a person.
        NeedsReview = "needs_review",
    }
}

stored_states! {
    /// A ticket or pickup code (`tickets.status`).
    TicketStatus ("ticket status") {
        Valid = "valid",
        CheckedIn = "checked_in",
        Void = "void",
    }
}

impl OrderStatus {
    /// Paid, in whole or with part of it refunded: the buyer owns what it holds.
    pub fn is_paid(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::PartiallyRefunded)
    }

    /// Still holding its units for a payment (pending or under review).
    pub fn is_holding(self) -> bool {
        matches!(self, OrderStatus::PendingPayment | OrderStatus::PaymentReview)
    }
}

impl PaymentStatus {
    /// Open at Midtrans: the buyer may still pay.
    pub fn is_open(self) -> bool {
        matches!(self, PaymentStatus::Pending | PaymentStatus::Challenge)
    }

    /// Counted as money in for its order.
    pub fn is_paid(self) -> bool {
        matches!(self, PaymentStatus::Paid | PaymentStatus::PartiallyRefunded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_from_its_name() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>(), Ok(*s));
        }
        for s in PaymentStatus::ALL {
            assert_eq!(s.as_str().parse::<PaymentStatus>(), Ok(*s));
        }
        for s in RequestStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!("settled".parse::<PaymentStatus>().is_err());
    }
}
