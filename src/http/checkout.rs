//! `POST /api/v1/checkout`: start paying. No account, no password.

use crate::context::Effects;
use std::net::IpAddr;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    extract::{ClientIp, Json},
};
use crate::{
    domain::{
        Checks,
        supporter::{Email, SponsorDraft, Visibility, parse_locale},
        text,
    },
    error::{Error, Result},
    payments::checkout::{self, Checkout, Started},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start_checkout))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// A recurring pledge on a patron tier.
    Patron,
    /// A one-time gift of any amount above the configured minimum.
    Gift,
    /// A company sponsorship on a sponsor tier; published once approved.
    Sponsor,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckoutRequest {
    pub(crate) kind: Kind,
    pub(crate) tier_id: Option<i64>,
    /// Pay-what-you-want amount (patron) or the gift's amount, in minor units.
    #[schema(schema_with = crate::http::openapi::field::amount_or_null)]
    pub(crate) amount_minor: Option<i64>,
    /// The patron's email, or the sponsor's contact email.
    #[schema(schema_with = crate::http::openapi::field::email)]
    pub(crate) email: String,
    /// How a patron is named (patron and gift).
    #[schema(schema_with = crate::http::openapi::field::name_or_null)]
    pub(crate) display_name: Option<String>,
    pub(crate) visibility: Option<Visibility>,
    #[schema(schema_with = crate::http::openapi::field::name_or_null)]
    pub(crate) company_name: Option<String>,
    #[schema(schema_with = crate::http::openapi::field::website_url_or_null)]
    pub(crate) website_url: Option<String>,
    /// Sponsors: `card` (default) or `invoice` (yearly tiers; an emailed
    /// invoice with `stripe.invoice_days_until_due` days to pay).
    pub(crate) pay_by: Option<PayBy>,
    /// The language of the supporter's emails, e.g. `fr` (default: the
    /// server's `mail.default_locale`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::http::openapi::field::locale_or_null)]
    pub(crate) locale: Option<String>,
    /// Where to send the payer after checkout (the support page's forms
    /// carry Mastodon's callbacks, checked to be on our origins); not part
    /// of the JSON API.
    #[serde(skip)]
    pub(crate) return_to: checkout::ReturnTo,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PayBy {
    Card,
    Invoice,
}

#[derive(Serialize, ToSchema)]
struct CheckoutResponse {
    checkout_url: String,
}

/// A sponsor's invoice application, received: an owner reviews it, and once
/// it is approved Stripe emails the invoice to the contact address.
#[derive(Serialize, ToSchema)]
struct ApplicationResponse {
    /// Always `under_review`.
    status: &'static str,
}

impl CheckoutRequest {
    fn parse(&self) -> Result<Checkout> {
        let mut checks = Checks::new();
        let need_tier = |checks: &mut Checks| {
            if self.tier_id.is_none() {
                checks.fail("tier_id", "is required");
            }
            self.tier_id.unwrap_or(0)
        };
        let checkout = match self.kind {
            Kind::Patron | Kind::Gift => {
                let email = checks.take(Email::parse("email", &self.email));
                let name = checks.take(text(
                    "display_name",
                    self.display_name.as_deref().unwrap_or(""),
                    1,
                    100,
                    false,
                ));
                let visibility = self.visibility.unwrap_or(Visibility::Private);
                if matches!(self.kind, Kind::Patron) {
                    let tier_id = need_tier(&mut checks);
                    checks.finish()?;
                    Checkout::Patron {
                        tier_id,
                        amount_minor: self.amount_minor,
                        email: email.expect("checked"),
                        display_name: name.expect("checked"),
                        visibility,
                    }
                } else {
                    let amount = self.amount_minor.unwrap_or(0);
                    if let Err(e) = crate::domain::amount("amount_minor", amount) {
                        checks.fail(&e.field, e.message);
                    }
                    checks.finish()?;
                    Checkout::Gift {
                        amount_minor: amount,
                        email: email.expect("checked"),
                        display_name: name.expect("checked"),
                        visibility,
                    }
                }
            }
            Kind::Sponsor => {
                let tier_id = need_tier(&mut checks);
                checks.finish()?;
                let sponsor = SponsorDraft::parse(
                    self.company_name.as_deref().unwrap_or(""),
                    self.website_url.as_deref().unwrap_or(""),
                    &self.email,
                    tier_id,
                    None,
                    None,
                )
                .map_err(|e| match e {
                    Error::Validation(mut fields) => {
                        for f in &mut fields {
                            if f.field == "contact_email" {
                                f.field = "email".into();
                            }
                        }
                        Error::Validation(fields)
                    }
                    other => other,
                })?;
                Checkout::Sponsor {
                    sponsor,
                    by_invoice: self.pay_by == Some(PayBy::Invoice),
                }
            }
        };
        Ok(checkout)
    }
}

/// Creates a Stripe Checkout Session and returns its URL. Send an
/// `Idempotency-Key` header to get the same session back on a retry. A
/// sponsor paying by invoice gets 202: the invoice is made once an owner
/// approves the application. Sponsor applications are limited per client
/// address and per email (429). No CORS: browsers on other sites cannot
/// send this (it needs `application/json`, which needs a preflight that is
/// never granted).
#[utoipa::path(post, path = "/api/v1/checkout", tag = "public", request_body = CheckoutRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key, same session",
            pattern = "^[!-~]{1,200}$")),
    responses((status = 200, body = CheckoutResponse), (status = 202, body = ApplicationResponse),
              (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn start_checkout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<CheckoutRequest>,
) -> Result<Response> {
    Ok(match run(&state, ip, &headers, &req).await? {
        Started::Pay(url) => axum::Json(CheckoutResponse { checkout_url: url }).into_response(),
        Started::UnderReview => (
            StatusCode::ACCEPTED,
            axum::Json(ApplicationResponse {
                status: "under_review",
            }),
        )
            .into_response(),
    })
}

/// Starts a checkout for `req` (from the JSON API or the support page's
/// forms, sent from `ip`) and returns what it led to. Sponsors on the domain
/// blocklist are refused here, when they apply, and applications are
/// counted against `sponsors.applications_per_*_per_hour`.
pub(crate) async fn run(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    req: &CheckoutRequest,
) -> Result<Started> {
    let gateway = state.gateway.as_ref().ok_or(Error::PaymentsNotConfigured)?;
    let checkout = req.parse()?;
    if let Checkout::Sponsor { sponsor, .. } = &checkout {
        sponsor
            .check_blocklist(&state.settings.sponsors.domain_blocklist)
            .map_err(|e| match e {
                Error::Validation(mut fields) => {
                    for f in &mut fields {
                        f.field = "website_url".into();
                    }
                    Error::Validation(fields)
                }
                other => other,
            })?;
        // Counted before the database or Stripe is touched; an application
        // that was refused above costs nothing and counts nothing.
        state
            .sponsor_limiter
            .check(ip, &sponsor.contact_email.normalized)?;
    }
    let key = match headers.get("idempotency-key") {
        Some(v) => {
            // Visible ASCII only, as documented: a key with a tab or space
            // in it would otherwise depend on how each proxy trims it.
            let key = v.as_bytes();
            if key.is_empty() || key.len() > 200 || !key.iter().all(|b| (b'!'..=b'~').contains(b)) {
                return Err(Error::field(
                    "Idempotency-Key",
                    "must be 1 to 200 visible ASCII characters, without spaces",
                ));
            }
            format!("client:{}", String::from_utf8_lossy(key))
        }
        None => format!("auto:{}", uuid::Uuid::new_v4()),
    };
    let hash = hex::encode(Sha256::digest(
        serde_json::to_vec(req).map_err(Error::internal_from)?,
    ));
    let locale = req
        .locale
        .as_deref()
        .map(|l| parse_locale("locale", l))
        .transpose()
        .map_err(|e| Error::Validation(vec![e]))?;
    let start = checkout::Start {
        idempotency_key: &key,
        request_hash: &hash,
        checkout,
        locale: locale.as_deref(),
        return_to: &req.return_to,
    };
    let started = checkout::start(&state.db, gateway, &state.settings.stripe, start).await;
    // The payer's supporter row (and an invoice application's email to the
    // owners) commits before Stripe is asked, whether or not it answers.
    state.after_commit(Effects::PUBLIC | Effects::MAIL);
    started
}
