//! Starting a payment: a patron subscribing to a tier, a one-time gift, or
//! a company buying a sponsorship. The same Idempotency-Key returns the same
//! Checkout Session; a retry after a crash reuses our row and Stripe's
//! idempotency key, so it never makes a second session.
//!
//! Starting a checkout emails nobody and changes no existing supporter:
//! anyone can type any address. A card sponsor's application is announced
//! when its first payment is booked; an invoice application waits for an
//! owner's approval, and only then is the invoice made (Stripe emails it).

use super::{
    Gateway, catalogue, customer_for,
    gateway::{Line, SessionRequest},
    metadata,
};
use crate::{
    config::StripeSettings,
    domain::{
        money::Currency,
        supporter::{Email, SponsorDraft, Visibility},
        tier::{Interval, TierKind},
    },
    error::{Error, Result},
    store::{self, Db, stripe::NewCheckout, tiers::TierRow},
};

/// A validated checkout request.
#[derive(Debug, Clone)]
pub enum Checkout {
    Patron {
        tier_id: i64,
        amount_minor: Option<i64>,
        email: Email,
        display_name: String,
        visibility: Visibility,
    },
    Gift {
        amount_minor: i64,
        email: Email,
        display_name: String,
        visibility: Visibility,
    },
    Sponsor {
        sponsor: SponsorDraft,
        /// Pay by emailed invoice with payment terms (yearly tiers only)
        /// instead of by card at Checkout.
        by_invoice: bool,
    },
}

impl Checkout {
    fn purpose(&self) -> &'static str {
        match self {
            Checkout::Patron { .. } => "patron",
            Checkout::Gift { .. } => "gift",
            Checkout::Sponsor { .. } => "sponsor",
        }
    }

    /// Who pays: their email address and the name they go by.
    fn payer(&self) -> (&str, &str) {
        match self {
            Checkout::Patron {
                email,
                display_name,
                ..
            }
            | Checkout::Gift {
                email,
                display_name,
                ..
            } => (&email.address, display_name),
            Checkout::Sponsor { sponsor, .. } => {
                (&sponsor.contact_email.address, &sponsor.company_name)
            }
        }
    }

    fn tier_id(&self) -> Option<i64> {
        match self {
            Checkout::Patron { tier_id, .. } => Some(*tier_id),
            Checkout::Gift { .. } => None,
            Checkout::Sponsor { sponsor, .. } => Some(sponsor.tier_id),
        }
    }
}

pub struct Urls {
    pub success: String,
    pub cancel: String,
}

/// Where the payer asked to return to (Mastodon's apps send their callback
/// URLs), already checked to be on our own origins; each replaces the
/// configured URL when present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReturnTo {
    pub success: Option<String>,
    pub cancel: Option<String>,
}

/// Success and cancel URLs: configured, or under the campaign's base URL.
pub fn urls(settings: &StripeSettings, public_base_url: Option<&str>) -> Result<Urls> {
    let from_base = |path: &str| public_base_url.map(|b| format!("{b}{path}"));
    let success = Some(settings.success_url.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| from_base("/thanks?session_id={CHECKOUT_SESSION_ID}"));
    let cancel = Some(settings.cancel_url.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| from_base("/support"));
    match (success, cancel) {
        (Some(success), Some(cancel)) => Ok(Urls { success, cancel }),
        _ => Err(Error::PaymentsNotConfigured),
    }
}

/// What a checkout request led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// Pay at this URL (Stripe Checkout, or the invoice once approved).
    Pay(String),
    /// A sponsor's invoice application, waiting for an owner's approval.
    UnderReview,
}

/// A checkout to start, with what makes it idempotent.
pub struct Start<'a> {
    /// The caller's Idempotency-Key (or a fresh one).
    pub idempotency_key: &'a str,
    /// A hash of the request: the same key with another request conflicts.
    pub request_hash: &'a str,
    pub checkout: Checkout,
    pub locale: Option<&'a str>,
    pub return_to: &'a ReturnTo,
}

/// Starts this checkout request: a Checkout URL, or an invoice application
/// left for the owners to review.
pub async fn start(
    db: &Db,
    gateway: &Gateway,
    settings: &StripeSettings,
    req: Start<'_>,
) -> Result<Started> {
    let checkout = &req.checkout;
    let campaign = store::campaign::get(db).await?;
    let currency: Currency = campaign.currency;
    let by_invoice = matches!(
        checkout,
        Checkout::Sponsor {
            by_invoice: true,
            ..
        }
    );
    let tier = tier_for(db, checkout, by_invoice).await?;
    let amount = amount_for(checkout, tier.as_ref(), settings)?;
    let row = store::stripe::claim_checkout(
        db,
        &NewCheckout {
            idempotency_key: req.idempotency_key,
            request_hash: req.request_hash,
            purpose: checkout.purpose(),
            tier_id: tier.as_ref().map(|t| t.id),
            amount_minor: amount,
            currency,
            by_invoice,
        },
    )
    .await?;
    if row.request_hash != req.request_hash {
        return Err(Error::conflict(
            "Idempotency-Key",
            "this key was used for a different request",
        ));
    }
    if let (Some(url), "open" | "completed") = (&row.url, row.status.as_str()) {
        return Ok(Started::Pay(url.clone()));
    }
    let supporter_id = match row.supporter_id {
        Some(id) => id,
        None => {
            let id = new_supporter(db, checkout, req.locale, by_invoice).await?;
            store::stripe::set_checkout_supporter(db, row.id, id).await?;
            id
        }
    };
    if by_invoice {
        // Nothing goes to Stripe yet: an invoice would be emailed to
        // whatever address was typed. `invoice_approved` makes it.
        return Ok(Started::UnderReview);
    }
    let mut urls = urls(settings, campaign.public_base_url.as_deref())?;
    if let Some(success) = &req.return_to.success {
        urls.success.clone_from(success);
    }
    if let Some(cancel) = &req.return_to.cancel {
        urls.cancel.clone_from(cancel);
    }
    let (email, name) = checkout.payer();
    let customer = customer_for(db, gateway, supporter_id, email, name).await?;
    let metadata = metadata(
        row.id,
        supporter_id,
        checkout.purpose(),
        tier.as_ref().map(|t| t.id),
    );
    let gift_name = format!("One-time gift to {}", campaign.name);
    let price_id = match &tier {
        Some(t) if amount == t.amount_minor => catalogue::sync_tier(db, gateway, t).await?,
        Some(t) => {
            catalogue::sync_tier(db, gateway, t).await?;
            None
        }
        None => None,
    };
    let product = tier.as_ref().map(|t| catalogue::product_id(t.id));
    let line = match (&price_id, &tier) {
        (Some(price), _) => Line::Price(price),
        (None, Some(t)) => Line::Custom {
            amount_minor: amount,
            currency,
            product: product.as_deref(),
            product_name: None,
            interval: Some(t.interval),
        },
        (None, None) => Line::Custom {
            amount_minor: amount,
            currency,
            product: None,
            product_name: Some(&gift_name),
            interval: None,
        },
    };
    let (session_id, url) = gateway
        .create_checkout_session(&SessionRequest {
            idempotency_key: format!("checkout-{}", row.id),
            customer: &customer,
            client_reference_id: row.id.to_string(),
            metadata,
            line,
            subscription: tier.is_some(),
            success_url: &urls.success,
            cancel_url: &urls.cancel,
        })
        .await?;
    store::stripe::open_checkout(db, row.id, &session_id, &url)
        .await
        .map(Started::Pay)
}

/// The tier a checkout pays for, checked: active, of the right kind,
/// yearly for an invoice, and not sold out.
async fn tier_for(db: &Db, checkout: &Checkout, by_invoice: bool) -> Result<Option<TierRow>> {
    let Some(id) = checkout.tier_id() else {
        return Ok(None);
    };
    let tier = store::tiers::get(db, id)
        .await
        .map_err(|_| Error::field("tier_id", "no such tier"))?;
    let wanted = if matches!(checkout, Checkout::Sponsor { .. }) {
        TierKind::Sponsor
    } else {
        TierKind::Patron
    };
    if tier.archived || tier.kind != wanted {
        return Err(Error::field(
            "tier_id",
            format!("must be an active {wanted} tier"),
        ));
    }
    if by_invoice && tier.interval != Interval::Year {
        return Err(Error::field(
            "pay_by",
            "invoices are for yearly sponsor tiers; pay by card",
        ));
    }
    if let Some(slots) = tier.slots
        && store::stripe::slots_taken(db, tier.id).await? >= slots
    {
        return Err(Error::conflict("tier_id", "this tier is sold out"));
    }
    Ok(Some(tier))
}

/// What the checkout charges: the patron's chosen amount within the tier's
/// rules, a gift of at least the configured minimum, else the tier's price.
fn amount_for(
    checkout: &Checkout,
    tier: Option<&TierRow>,
    settings: &StripeSettings,
) -> Result<i64> {
    match (checkout, tier) {
        (Checkout::Patron { amount_minor, .. }, Some(t)) => t
            .draft()
            .pledge_amount(*amount_minor)
            .map_err(|m| Error::field("amount_minor", m)),
        (Checkout::Gift { amount_minor, .. }, _) => {
            if *amount_minor < settings.one_time_min_minor {
                return Err(Error::field(
                    "amount_minor",
                    format!(
                        "a one-time gift is at least {}",
                        settings.one_time_min_minor
                    ),
                ));
            }
            Ok(*amount_minor)
        }
        (_, Some(t)) => Ok(t.amount_minor),
        (_, None) => Err(Error::field("tier_id", "is required")),
    }
}

/// The supporter a first attempt of a checkout pays as. An existing patron
/// is found, never changed (not even their language); a sponsor applies.
async fn new_supporter(
    db: &Db,
    checkout: &Checkout,
    locale: Option<&str>,
    by_invoice: bool,
) -> Result<i64> {
    Ok(match checkout {
        Checkout::Patron {
            email,
            display_name,
            visibility,
            ..
        }
        | Checkout::Gift {
            email,
            display_name,
            visibility,
            ..
        } => store::stripe::upsert_patron(db, email, display_name, *visibility, locale).await?,
        Checkout::Sponsor { sponsor, .. } => {
            let actor = store::audit::Actor {
                id: None,
                label: format!("checkout ({})", sponsor.contact_email.address),
            };
            crate::service::sponsors::record(db, &actor, sponsor, locale, by_invoice)
                .await?
                .id
        }
    })
}
