//! The audit log: who did what and when, filtered by admin, action and
//! dates, newest first in keyset pages.

use axum::{extract::State, response::Response};
use serde::{Deserialize, Serialize};

use super::{Signed, blank_as_none, page};
use crate::{
    domain::month::Day,
    error::{Error, Result},
    http::{AppState, extract::Query},
    store::{self, audit::AuditFilter},
};

const PAGE: i64 = 50;

#[derive(Deserialize, Serialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    admin: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default, deserialize_with = "blank_as_none", skip_serializing)]
    before: Option<i64>,
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter> {
        let day = |field: &str, text: &str| -> Result<Option<Day>> {
            match text.trim() {
                "" => Ok(None),
                t => Day::parse(field, t)
                    .map(Some)
                    .map_err(|e| Error::Validation(vec![e])),
            }
        };
        Ok(AuditFilter {
            actor_id: match self.admin.trim() {
                "" => None,
                a => Some(
                    a.parse()
                        .map_err(|_| Error::field("admin", "is not one of the choices"))?,
                ),
            },
            action: Some(self.action.trim().to_owned()).filter(|a| !a.is_empty()),
            from: day("from", &self.from)?.map(Day::start),
            until: day("to", &self.to)?.map(|d| d.start() + chrono::Duration::days(1)),
        })
    }
}

#[derive(Serialize)]
struct Entry {
    at: String,
    actor: String,
    action: String,
    target: String,
    details: String,
}

#[derive(Serialize)]
struct AuditPage {
    q: AuditQuery,
    admins: Vec<(i64, String)>,
    actions: Vec<String>,
    entries: Vec<Entry>,
    next: Option<String>,
    error: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<AuditQuery>,
) -> Result<Response> {
    let (filter, error) = match q.filter() {
        Ok(f) => (f, None),
        Err(e) => (AuditFilter::default(), Some(super::Flash::error(&e).text)),
    };
    let rows = store::audit::search(&state.db, &filter, q.before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten()
        .map(|id| {
            format!(
                "{}&before={id}",
                serde_urlencoded::to_string(&q).unwrap_or_default()
            )
        });
    let admins = store::admins::list(&state.db)
        .await?
        .into_iter()
        .map(|a| (a.id, a.email))
        .collect();
    let entries = rows
        .into_iter()
        .map(|r| Entry {
            at: r.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            actor: r.actor,
            action: r.action,
            target: match r.target_id {
                Some(id) => format!("{} #{id}", r.target_type),
                None => r.target_type,
            },
            details: r.details,
        })
        .collect();
    page(
        &signed,
        "audit.html",
        "audit",
        AuditPage {
            q,
            admins,
            actions: store::audit::actions(&state.db).await?,
            entries,
            next,
            error,
        },
    )
}
