//! A Stripe event as patronage reads it: the envelope (id, type, created,
//! livemode), and `data.object` parsed into async-stripe's object type only
//! for the event types we act on (`events::HANDLED`). The objects of other
//! types are never parsed: they are stored raw for the record, so a type
//! newer than our async-stripe is no trouble either.
//!
//! The objects are read with the miniserde impls that async-stripe's client
//! uses for every API response, so no serde code is generated for Stripe's
//! types (that, and async-stripe-webhook's enum of every event type, made a
//! release build take half an hour).

use serde::Deserialize;
use serde_json::value::RawValue;
use stripe_shared::{Charge, CheckoutSession, Dispute, Invoice, Subscription};

#[derive(Debug)]
pub struct Event {
    pub id: String,
    pub type_: String,
    /// Unix time.
    pub created: i64,
    pub livemode: bool,
    pub data: EventData,
}

#[derive(Debug)]
pub struct EventData {
    pub object: EventObject,
}

/// The object of an event we act on, by event type.
#[derive(Debug)]
pub enum EventObject {
    CheckoutSessionCompleted(Box<CheckoutSession>),
    CheckoutSessionAsyncPaymentSucceeded(Box<CheckoutSession>),
    CheckoutSessionAsyncPaymentFailed(Box<CheckoutSession>),
    CustomerSubscriptionCreated(Box<Subscription>),
    CustomerSubscriptionUpdated(Box<Subscription>),
    CustomerSubscriptionDeleted(Box<Subscription>),
    InvoicePaid(Box<Invoice>),
    InvoicePaymentFailed(Box<Invoice>),
    InvoicePaymentActionRequired(Box<Invoice>),
    ChargeRefunded(Box<Charge>),
    ChargeDisputeCreated(Box<Dispute>),
    ChargeDisputeClosed(Box<Dispute>),
    /// A type we do not act on; its object is not read.
    Unhandled,
}

impl EventObject {
    /// Reads `object` (raw JSON) as the type an event of `type_` carries.
    pub fn parse(type_: &str, object: &str) -> Result<Self, String> {
        fn read<T: miniserde::Deserialize>(object: &str) -> Result<Box<T>, String> {
            miniserde::json::from_str(object)
                .map(Box::new)
                .map_err(|_| {
                    format!(
                        "the object is not a valid {}",
                        std::any::type_name::<T>().rsplit("::").next().unwrap_or("")
                    )
                })
        }
        Ok(match type_ {
            "checkout.session.completed" => Self::CheckoutSessionCompleted(read(object)?),
            "checkout.session.async_payment_succeeded" => {
                Self::CheckoutSessionAsyncPaymentSucceeded(read(object)?)
            }
            "checkout.session.async_payment_failed" => {
                Self::CheckoutSessionAsyncPaymentFailed(read(object)?)
            }
            "customer.subscription.created" => Self::CustomerSubscriptionCreated(read(object)?),
            "customer.subscription.updated" => Self::CustomerSubscriptionUpdated(read(object)?),
            "customer.subscription.deleted" => Self::CustomerSubscriptionDeleted(read(object)?),
            "invoice.paid" => Self::InvoicePaid(read(object)?),
            "invoice.payment_failed" => Self::InvoicePaymentFailed(read(object)?),
            "invoice.payment_action_required" => Self::InvoicePaymentActionRequired(read(object)?),
            "charge.refunded" => Self::ChargeRefunded(read(object)?),
            "charge.dispute.created" => Self::ChargeDisputeCreated(read(object)?),
            "charge.dispute.closed" => Self::ChargeDisputeClosed(read(object)?),
            _ => Self::Unhandled,
        })
    }
}

impl Event {
    /// Reads an event's JSON; fails when the envelope is incomplete or the
    /// object of a type we act on does not parse.
    pub fn parse(payload: &str) -> Result<Self, String> {
        serde_json::from_str(payload).map_err(|e| e.to_string())
    }
}

/// The envelope, with the object left as raw JSON until we know its type.
#[derive(Deserialize)]
struct RawEvent<'a> {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    #[serde(borrow)]
    data: RawData<'a>,
}

#[derive(Deserialize)]
struct RawData<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
}

/// From a string only (the object is borrowed from it), as `Event::parse`.
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = RawEvent::deserialize(d)?;
        let object = EventObject::parse(&raw.type_, raw.data.object.get())
            .map_err(|e| serde::de::Error::custom(format!("{}: {e}", raw.type_)))?;
        Ok(Event {
            id: raw.id,
            type_: raw.type_,
            created: raw.created,
            livemode: raw.livemode,
            data: EventData { object },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::events::HANDLED;

    /// Every type `events` acts on is read here (an empty object fails as
    /// that type), and nothing else is.
    #[test]
    fn reads_exactly_the_handled_types() {
        for t in HANDLED {
            assert!(EventObject::parse(t, "{}").is_err(), "{t} is not read");
        }
        for t in ["customer.created", "treasury.future_thing.created", ""] {
            assert!(matches!(
                EventObject::parse(t, "{}"),
                Ok(EventObject::Unhandled)
            ));
        }
    }

    #[test]
    fn unhandled_objects_are_not_read() {
        let event = Event::parse(
            r#"{"id":"evt_1","type":"treasury.future_thing.created","created":1,"data":{"object":{"object":"future_thing","shape":[1,{"new":true}]}}}"#,
        )
        .unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.created, 1);
        assert!(!event.livemode);
        assert!(matches!(event.data.object, EventObject::Unhandled));
    }

    #[test]
    fn a_handled_type_with_an_unreadable_object_is_refused() {
        let err = Event::parse(
            r#"{"id":"evt_1","type":"invoice.paid","created":1,"livemode":true,"data":{"object":{"object":"invoice","id":"in_1"}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("invoice.paid"), "{err}");
        assert!(Event::parse(r#"{"id":"evt_1","type":"x","data":{"object":{}}}"#).is_err());
        assert!(Event::parse("not json").is_err());
    }
}
