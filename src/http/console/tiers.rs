//! Tiers: the list with each tier's Stripe catalogue state, creating,
//! editing (rank orders them) and archiving.

use axum::{extract::State, response::Response};
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, blank_as_none, page};
use crate::{
    domain::{
        money::{Currency, Money},
        tier::{Interval, TierDraft, TierKind, TierPatch},
    },
    error::{Error, Result},
    http::{AppState, extract::Path},
    service,
    store::{self, tiers::TierRow},
};

#[derive(Serialize)]
struct TierView {
    id: i64,
    kind: &'static str,
    name: String,
    description: String,
    price: String,
    /// As typed in the edit form: "5.00".
    amount: String,
    interval: &'static str,
    pwyw_min: Option<String>,
    /// The same, formatted for reading ("€8").
    pwyw_min_shown: Option<String>,
    slots: Option<i64>,
    rank: i64,
    archived: bool,
    currency: &'static str,
    /// "synced", "waiting", "failed", "unsynced" or "off".
    stripe: &'static str,
    stripe_error: Option<String>,
}

fn view(t: TierRow, state: Option<&store::tiers::CatalogueState>, payments_on: bool) -> TierView {
    let money = |m| Money::new(m, t.currency);
    let (stripe, stripe_error) = match state {
        _ if !payments_on => ("off", None),
        Some(s) if s.sync_status.as_deref() == Some("dead") => ("failed", s.sync_error.clone()),
        Some(s) if s.sync_status.is_some() => ("waiting", s.sync_error.clone()),
        Some(s) if s.price_minor == Some(t.amount_minor) => ("synced", None),
        _ => ("unsynced", None),
    };
    TierView {
        id: t.id,
        kind: t.kind.as_str(),
        name: t.name,
        description: t.description,
        price: money(t.amount_minor).display(),
        amount: money(t.amount_minor).decimal(),
        interval: t.interval.as_str(),
        pwyw_min: t.pwyw_min_minor.map(|m| money(m).decimal()),
        pwyw_min_shown: t.pwyw_min_minor.map(|m| money(m).display()),
        currency: t.currency.code(),
        slots: t.slots,
        rank: t.rank,
        archived: t.archived,
        stripe,
        stripe_error,
    }
}

async fn views(state: &AppState, include_archived: bool) -> Result<Vec<TierView>> {
    let catalogue = store::tiers::catalogue(&state.db).await?;
    let rows = store::tiers::list(&state.db, include_archived).await?;
    Ok(rows
        .into_iter()
        .map(|t| {
            let s = catalogue.iter().find(|c| c.tier_id == t.id);
            view(t, s, state.gateway.is_some())
        })
        .collect())
}

#[derive(Serialize)]
struct TiersPage<'a> {
    tiers: Vec<TierView>,
    currency: &'static str,
    /// A new tier's form as it was sent, when it needs fixing.
    draft: Option<&'a TierForm>,
    draft_error: Option<String>,
}

pub async fn list(State(state): State<AppState>, signed: Signed) -> Result<Response> {
    list_page(&state, &signed, None).await
}

/// The list, with the new-tier form refilled when `draft` needs fixing.
async fn list_page(
    state: &AppState,
    signed: &Signed,
    draft: Option<(&TierForm, &Error)>,
) -> Result<Response> {
    let tiers = views(state, true).await?;
    let currency = service::tiers::campaign_currency(state, None, "currency").await?;
    let mut res = page(
        signed,
        "tiers.html",
        "tiers",
        TiersPage {
            tiers,
            currency: currency.code(),
            draft: draft.map(|(f, _)| f),
            draft_error: draft.map(|(_, e)| super::Flash::error(e).text),
        },
    )?;
    if draft.is_some() {
        *res.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(res)
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response> {
    let tier = views(&state, true)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(Error::NotFound("tier"))?;
    page(&signed, "tier.html", "tiers", tier)
}

/// The tier form: amounts as people type them, in the campaign currency.
#[derive(Deserialize, Serialize)]
pub struct TierForm {
    kind: Option<TierKind>,
    name: String,
    #[serde(default)]
    description: String,
    amount: String,
    interval: Interval,
    #[serde(default)]
    pwyw_min: String,
    #[serde(default, deserialize_with = "blank_as_none")]
    slots: Option<i64>,
    #[serde(default, deserialize_with = "blank_as_none")]
    rank: Option<i64>,
}

impl TierForm {
    fn amounts(&self, currency: Currency) -> Result<(i64, Option<i64>)> {
        let mut errors = Vec::new();
        let amount = Money::parse_decimal(&self.amount, currency)
            .map_err(|m| errors.push(crate::error::FieldError::new("price", m)))
            .ok();
        let pwyw = if self.pwyw_min.trim().is_empty() {
            None
        } else {
            Money::parse_decimal(&self.pwyw_min, currency)
                .map_err(|m| {
                    errors.push(crate::error::FieldError::new("pay what you want, from", m))
                })
                .ok()
        };
        if !errors.is_empty() {
            return Err(Error::Validation(errors));
        }
        Ok((
            amount.expect("checked").amount_minor,
            pwyw.map(|m| m.amount_minor),
        ))
    }
}

pub async fn create(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<TierForm>,
) -> Result<Response> {
    let outcome = async {
        let currency = service::tiers::campaign_currency(&state, None, "currency").await?;
        let (amount_minor, pwyw_min_minor) = form.amounts(currency)?;
        let draft = TierDraft {
            kind: form.kind.unwrap_or(TierKind::Patron),
            name: form.name.clone(),
            description: form.description.clone(),
            amount_minor,
            currency,
            interval: form.interval,
            pwyw_min_minor,
            slots: form.slots,
            rank: form.rank.unwrap_or(0),
        }
        .validate()?;
        let row = service::tiers::create(&state, &signed.admin.actor(), &draft).await?;
        Ok(format!("Tier “{}” created.", row.name))
    }
    .await;
    match outcome {
        // What the owner typed stays, with what to fix.
        Err(e @ (Error::Validation(_) | Error::Conflict { .. })) => {
            list_page(&state, &signed, Some((&form, &e))).await
        }
        outcome => after(signed.cookies, "/admin/tiers", outcome),
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<TierForm>,
) -> Result<Response> {
    let back = format!("/admin/tiers/{id}");
    let outcome = async {
        let current = store::tiers::get(&state.db, id).await?;
        let (amount_minor, pwyw_min_minor) = form.amounts(current.currency)?;
        let patch = TierPatch {
            name: Some(form.name),
            description: Some(form.description),
            amount_minor: Some(amount_minor),
            interval: Some(form.interval),
            pwyw_min_minor: Some(pwyw_min_minor),
            slots: Some(form.slots),
            rank: form.rank,
        };
        let row = service::tiers::update(&state, &signed.admin.actor(), id, patch).await?;
        Ok(format!("Tier “{}” saved.", row.name))
    }
    .await;
    after(signed.cookies, &back, outcome)
}

#[derive(Deserialize)]
pub struct Confirm {}

pub async fn archive(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Confirm>,
) -> Result<Response> {
    let row = service::tiers::archive(&state, &signed.admin.actor(), id).await?;
    after(
        signed.cookies,
        "/admin/tiers",
        Ok(format!(
            "Tier “{}” archived: running pledges continue.",
            row.name
        )),
    )
}
