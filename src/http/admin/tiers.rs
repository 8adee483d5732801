//! Tier management.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::nullable;
use crate::{
    domain::{
        money::{Money, MoneyView},
        tier::{Interval, TierDraft, TierKind, TierPatch},
    },
    error::Result,
    http::{
        AppState,
        extract::{Admin, Json, Owner, Path, Query},
    },
    service,
    store::{self, tiers::TierRow},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tiers, create_tier))
        .routes(routes!(get_tier, update_tier))
        .routes(routes!(archive_tier))
}

#[derive(Serialize, ToSchema)]
pub struct TierView {
    id: i64,
    kind: TierKind,
    name: String,
    description: String,
    amount: MoneyView,
    interval: Interval,
    pwyw_min: Option<MoneyView>,
    slots: Option<i64>,
    rank: i64,
    archived: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TierRow> for TierView {
    fn from(t: TierRow) -> Self {
        TierView {
            id: t.id,
            kind: t.kind,
            name: t.name,
            description: t.description,
            amount: Money::new(t.amount_minor, t.currency).view(),
            interval: t.interval,
            pwyw_min: t.pwyw_min_minor.map(|m| Money::new(m, t.currency).view()),
            slots: t.slots,
            rank: t.rank,
            archived: t.archived,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    include_archived: bool,
}

/// All tiers, archived ones on request.
#[utoipa::path(get, path = "/api/v1/admin/tiers", tag = "admin", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = [TierView])))]
async fn list_tiers(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Vec<TierView>>> {
    let rows = store::tiers::list(&state.db, q.include_archived).await?;
    Ok(axum::Json(rows.into_iter().map(TierView::from).collect()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTier {
    kind: TierKind,
    #[schema(schema_with = crate::http::openapi::field::tier_name)]
    name: String,
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::field::tier_description)]
    description: String,
    /// Price in minor units (the suggested amount for pay-what-you-want).
    #[schema(schema_with = crate::http::openapi::field::amount)]
    amount_minor: i64,
    /// Must be the campaign currency; defaults to it.
    #[schema(schema_with = crate::http::openapi::field::currency_or_null)]
    currency: Option<String>,
    interval: Interval,
    /// Pay what you want, at or above this (at most `amount_minor`).
    #[schema(schema_with = crate::http::openapi::field::amount_or_null)]
    pwyw_min_minor: Option<i64>,
    /// How many supporters the tier takes at most.
    #[schema(schema_with = crate::http::openapi::field::slots_or_null)]
    slots: Option<i64>,
    #[serde(default)]
    #[schema(schema_with = crate::http::openapi::field::rank)]
    rank: i64,
}

/// Brings Stripe's Price in line with a changed tier. Best effort: the tier
/// is saved either way, and checkout or `POST /admin/stripe/sync` catches up.
#[utoipa::path(post, path = "/api/v1/admin/tiers", tag = "admin", security(("bearer" = [])), request_body = CreateTier,
    responses((status = 201, body = TierView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn create_tier(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<CreateTier>,
) -> Result<(StatusCode, axum::Json<TierView>)> {
    let currency =
        service::tiers::campaign_currency(&state, req.currency.as_deref(), "currency").await?;
    let draft = TierDraft {
        kind: req.kind,
        name: req.name,
        description: req.description,
        amount_minor: req.amount_minor,
        currency,
        interval: req.interval,
        pwyw_min_minor: req.pwyw_min_minor,
        slots: req.slots,
        rank: req.rank,
    }
    .validate()?;
    let row = service::tiers::create(&state, &admin.actor(), &draft).await?;
    Ok((StatusCode::CREATED, axum::Json(row.into())))
}

/// One tier.
#[utoipa::path(get, path = "/api/v1/admin/tiers/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = TierView), (status = 404, body = crate::error::Problem)))]
async fn get_tier(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i64>,
) -> Result<axum::Json<TierView>> {
    Ok(axum::Json(store::tiers::get(&state.db, id).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateTier {
    #[schema(schema_with = crate::http::openapi::field::tier_name_or_null)]
    name: Option<String>,
    #[schema(schema_with = crate::http::openapi::field::tier_description_or_null)]
    description: Option<String>,
    /// A new price applies to new pledges only; existing pledges keep theirs.
    #[schema(schema_with = crate::http::openapi::field::amount_or_null)]
    amount_minor: Option<i64>,
    interval: Option<Interval>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::http::openapi::field::amount_or_null)]
    pwyw_min_minor: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::http::openapi::field::slots_or_null)]
    slots: Option<Option<i64>>,
    #[schema(schema_with = crate::http::openapi::field::rank_or_null)]
    rank: Option<i64>,
}

/// Changes a tier. Its kind and currency are fixed.
#[utoipa::path(patch, path = "/api/v1/admin/tiers/{id}", tag = "admin", security(("bearer" = [])), request_body = UpdateTier,
    params(("id" = i64, Path)), responses((status = 200, body = TierView), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_tier(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
    Json(req): Json<UpdateTier>,
) -> Result<axum::Json<TierView>> {
    let patch = TierPatch {
        name: req.name,
        description: req.description,
        amount_minor: req.amount_minor,
        interval: req.interval,
        pwyw_min_minor: req.pwyw_min_minor,
        slots: req.slots,
        rank: req.rank,
    };
    let row = service::tiers::update(&state, &admin.actor(), id, patch).await?;
    Ok(axum::Json(row.into()))
}

/// Archives a tier: hidden from the public, no new pledges; running
/// pledges continue.
#[utoipa::path(post, path = "/api/v1/admin/tiers/{id}/archive", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = TierView), (status = 404, body = crate::error::Problem)))]
async fn archive_tier(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Path(id): Path<i64>,
) -> Result<axum::Json<TierView>> {
    let row = service::tiers::archive(&state, &admin.actor(), id).await?;
    Ok(axum::Json(row.into()))
}
