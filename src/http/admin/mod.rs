//! The admin API under `/api/v1/admin`. Every route but login and setup
//! needs a token; `Owner` routes refuse viewers.

mod analytics;
mod audit;
mod auth;
mod campaign;
mod costs;
mod fediverse;
mod ledger;
mod operations;
mod payments;
mod pledges;
mod range;
mod reports;
mod supporters;
mod tiers;
pub mod webhooks;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;
use crate::{error::Result, store::Page};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::routes())
        .merge(tiers::routes())
        .merge(campaign::routes())
        .merge(supporters::routes())
        .merge(pledges::routes())
        .merge(ledger::routes())
        .merge(audit::routes())
        .merge(reports::routes())
        .merge(costs::routes())
        .merge(analytics::routes())
        .merge(payments::routes())
        .merge(operations::routes())
        .merge(webhooks::routes())
        .merge(fediverse::routes())
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// Keyset pagination: pass the previous page's `next_after` as `after`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Case-insensitive search in email and name.
    pub q: Option<String>,
    pub after: Option<i64>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

pub fn page(after: Option<i64>, limit: Option<i64>) -> Result<Page> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(crate::error::Error::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    Ok(Page {
        after: after.unwrap_or(0),
        limit,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i64>,
}

impl<T: ToSchema> Paged<T> {
    pub fn new(items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let next_after = if items.len() as i64 == limit {
            items.last().map(id)
        } else {
            None
        };
        Paged { items, next_after }
    }
}

/// For optional fields that may be explicitly set to null in a PATCH:
/// absent → None, null → Some(None), value → Some(Some(v)).
pub fn nullable<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
