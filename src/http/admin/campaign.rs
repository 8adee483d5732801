//! Campaign settings.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::nullable;
use crate::{
    domain::{
        campaign::Campaign,
        money::{Currency, Money, MoneyView},
    },
    error::{Error, Result},
    http::{
        AppState,
        extract::{Admin, Json, Owner},
    },
    service,
    store::{self, campaign::CampaignRow},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_campaign, update_campaign))
}

#[derive(Serialize, ToSchema)]
struct CampaignView {
    name: String,
    description: String,
    currency: String,
    monthly_goal: Option<MoneyView>,
    public_base_url: Option<String>,
    updated_at: DateTime<Utc>,
}

impl From<CampaignRow> for CampaignView {
    fn from(c: CampaignRow) -> Self {
        CampaignView {
            name: c.name,
            description: c.description,
            currency: c.currency.code().to_owned(),
            monthly_goal: c
                .monthly_goal_minor
                .map(|g| Money::new(g, c.currency).view()),
            public_base_url: c.public_base_url,
            updated_at: c.updated_at,
        }
    }
}

/// The campaign settings.
#[utoipa::path(get, path = "/api/v1/admin/campaign", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = CampaignView)))]
async fn get_campaign(State(state): State<AppState>, _: Admin) -> Result<axum::Json<CampaignView>> {
    Ok(axum::Json(store::campaign::get(&state.db).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateCampaign {
    #[schema(schema_with = crate::http::openapi::field::campaign_name_or_null)]
    name: Option<String>,
    #[schema(schema_with = crate::http::openapi::field::campaign_description_or_null)]
    description: Option<String>,
    /// Changeable only before any tier, pledge or ledger entry exists.
    #[schema(schema_with = crate::http::openapi::field::currency_or_null)]
    currency: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::http::openapi::field::amount_or_null)]
    monthly_goal_minor: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = crate::http::openapi::field::website_url_or_null)]
    public_base_url: Option<Option<String>>,
}

/// Changes the campaign settings; absent fields stay, null clears.
#[utoipa::path(patch, path = "/api/v1/admin/campaign", tag = "admin", security(("bearer" = [])), request_body = UpdateCampaign,
    responses((status = 200, body = CampaignView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)))]
async fn update_campaign(
    State(state): State<AppState>,
    Owner(admin): Owner,
    Json(req): Json<UpdateCampaign>,
) -> Result<axum::Json<CampaignView>> {
    let current = store::campaign::get(&state.db).await?.settings();
    let currency = match req.currency.as_deref() {
        Some(code) => Currency::parse(code)
            .ok_or_else(|| Error::field("currency", "must be an ISO 4217 currency code"))?,
        None => current.currency,
    };
    let next = Campaign {
        name: req.name.unwrap_or(current.name),
        description: req.description.unwrap_or(current.description),
        currency,
        monthly_goal_minor: req.monthly_goal_minor.unwrap_or(current.monthly_goal_minor),
        public_base_url: req.public_base_url.unwrap_or(current.public_base_url),
    }
    .validate()?;
    let row = service::campaign::update(&state, &admin.actor(), &next).await?;
    Ok(axum::Json(row.into()))
}
