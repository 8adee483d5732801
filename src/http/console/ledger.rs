//! The ledger as a bank statement: entries filtered by dates, kind and
//! source, a totals row equal to the report for the same range, fees as
//! their own lines; recording and voiding manual contributions; the CSV.

use axum::{body::Body, extract::State, response::Response};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, blank_as_none, page};
use crate::{
    domain::{
        ledger::{EntryKind, ManualContribution},
        money::{Currency, Money},
        month::Day,
        pledge::Source,
    },
    error::{Error, Result},
    http::{
        AppState, download,
        extract::{Path, Query},
    },
    service,
    store::{
        self,
        ledger::{EntryRow, Filter},
    },
};

const PAGE: i64 = 50;

/// The filter as the form sends it; blank fields mean "any".
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub struct LedgerQuery {
    #[serde(default)]
    from: String,
    /// Inclusive, as people read "from 1 to 30 November".
    #[serde(default)]
    to: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    source: String,
    #[serde(default, deserialize_with = "blank_as_none", skip_serializing)]
    before: Option<i64>,
}

impl LedgerQuery {
    fn filter(&self) -> Result<Filter> {
        let day = |field: &str, text: &str| -> Result<Option<Day>> {
            if text.trim().is_empty() {
                return Ok(None);
            }
            Day::parse(field, text)
                .map(Some)
                .map_err(|e| Error::Validation(vec![e]))
        };
        let from = day("from", &self.from)?;
        let to = day("to", &self.to)?;
        let kind = choice(&self.kind, "kind", EntryKind::parse)?;
        let source = choice(&self.source, "source", Source::parse)?;
        Ok(Filter {
            kind,
            source,
            supporter_id: None,
            from: from.map(Day::start),
            until: to.map(|d| d.start() + chrono::Duration::days(1)),
        })
    }

    /// The same filter as a query string, for links (next page, CSV).
    fn query_string(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

#[derive(Serialize)]
struct EntryView {
    id: i64,
    date: String,
    kind: &'static str,
    source: &'static str,
    amount: String,
    negative: bool,
    reference: String,
    note: String,
    supporter_id: Option<i64>,
    voidable: bool,
    voided_by: Option<i64>,
    reverses: Option<i64>,
}

impl From<EntryRow> for EntryView {
    fn from(e: EntryRow) -> Self {
        EntryView {
            voidable: e.check_voidable().is_ok(),
            id: e.id,
            date: e.occurred_at.format("%Y-%m-%d").to_string(),
            kind: e.kind.as_str(),
            source: e.source.as_str(),
            amount: Money::new(e.amount_minor, e.currency).display(),
            negative: e.amount_minor < 0,
            reference: e.external_ref,
            note: e.note,
            supporter_id: e.supporter_id,
            voided_by: e.reversed_by,
            reverses: e.reverses_entry_id,
        }
    }
}

#[derive(Serialize)]
struct TotalsView {
    income: String,
    refunds: String,
    disputes: String,
    fees: String,
    net: String,
    entries: i64,
}

#[derive(Serialize)]
struct LedgerPage<'a> {
    q: LedgerQuery,
    query: String,
    entries: Vec<EntryView>,
    totals: TotalsView,
    next: Option<String>,
    kinds: Vec<&'static str>,
    today: String,
    currency: &'static str,
    error: Option<String>,
    /// The contribution form as it was sent, when it needs fixing.
    draft: Option<&'a RecordForm>,
    draft_error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<LedgerQuery>,
) -> Result<Response> {
    list_page(&state, &signed, q, None).await
}

/// The ledger, with the contribution form refilled when `draft` needs
/// fixing.
async fn list_page(
    state: &AppState,
    signed: &Signed,
    q: LedgerQuery,
    draft: Option<(&RecordForm, &Error)>,
) -> Result<Response> {
    let currency = service::tiers::campaign_currency(state, None, "currency").await?;
    let (filter, error) = match q.filter() {
        Ok(f) => (f, None),
        Err(e) => (Filter::default(), Some(super::Flash::error(&e).text)),
    };
    let rows = store::ledger::list(&state.db, &filter, q.before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last().map(|r| r.id))
        .flatten()
        .map(|id| format!("{}&before={id}", q.query_string()));
    let totals = totals(&store::ledger::totals(&state.db, &filter).await?, currency);
    let mut res = page(
        signed,
        "ledger.html",
        "ledger",
        LedgerPage {
            query: q.query_string(),
            q,
            entries: rows.into_iter().map(Into::into).collect(),
            totals,
            next,
            kinds: EntryKind::ALL.iter().map(|k| k.as_str()).collect(),
            today: Utc::now().date_naive().to_string(),
            currency: currency.code(),
            error,
            draft: draft.map(|(f, _)| f),
            draft_error: draft.map(|(_, e)| super::Flash::error(e).text),
        },
    )?;
    if draft.is_some() {
        *res.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(res)
}

/// Income less refunds, disputes and fees, as the report computes it.
fn totals(rows: &[store::ledger::KindTotal], currency: Currency) -> TotalsView {
    let sum = |kinds: &[EntryKind]| -> i64 {
        rows.iter()
            .filter(|r| r.currency == currency && kinds.contains(&r.kind))
            .map(|r| r.amount_minor)
            .sum()
    };
    let shown = |m: i64| Money::new(m, currency).display();
    let income = sum(&[EntryKind::Payment, EntryKind::Manual]);
    let (refunds, disputes, fees) = (
        sum(&[EntryKind::Refund]),
        sum(&[EntryKind::Dispute]),
        sum(&[EntryKind::Fee]),
    );
    TotalsView {
        income: shown(income),
        refunds: shown(-refunds),
        disputes: shown(-disputes),
        fees: shown(-fees),
        net: shown(income + refunds + disputes + fees),
        entries: rows.iter().map(|r| r.entries).sum(),
    }
}

#[derive(Deserialize, Serialize)]
pub struct RecordForm {
    amount: String,
    date: String,
    #[serde(default, deserialize_with = "blank_as_none")]
    supporter_id: Option<i64>,
    #[serde(default)]
    note: String,
    #[serde(default)]
    reference: String,
}

pub async fn record(
    State(state): State<AppState>,
    OwnerForm { signed, form }: OwnerForm<RecordForm>,
) -> Result<Response> {
    let outcome = async {
        let currency = service::tiers::campaign_currency(&state, None, "currency").await?;
        let amount =
            Money::parse_decimal(&form.amount, currency).map_err(|m| Error::field("amount", m))?;
        let date = Day::parse("date", &form.date).map_err(|e| Error::Validation(vec![e]))?;
        let reference = Some(form.reference.trim()).filter(|r| !r.is_empty());
        let contribution = ManualContribution::parse(
            form.supporter_id,
            amount.amount_minor,
            currency,
            date.date(),
            Utc::now().date_naive(),
            &form.note,
            reference,
        )?;
        let row =
            service::ledger::record(&state, &signed.admin.actor(), &contribution, None).await?;
        Ok(format!(
            "Recorded {} on {} as entry #{}.",
            amount.display(),
            date.date(),
            row.id
        ))
    }
    .await;
    match outcome {
        // What the owner typed stays, with what to fix.
        Err(e @ (Error::Validation(_) | Error::Conflict { .. })) => {
            list_page(&state, &signed, LedgerQuery::default(), Some((&form, &e))).await
        }
        outcome => after(signed.cookies, "/admin/ledger", outcome),
    }
}

#[derive(Deserialize)]
pub struct VoidForm {
    #[serde(default)]
    reason: String,
}

pub async fn void(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<VoidForm>,
) -> Result<Response> {
    let outcome = service::ledger::void(&state, &signed.admin.actor(), id, &form.reason)
        .await
        .map(|row| format!("Entry #{id} voided by entry #{}.", row.id));
    after(signed.cookies, "/admin/ledger", outcome)
}

/// The filtered ledger as CSV, every matching entry (not one page), read
/// and written a page at a time: ISO dates, a signed decimal amount, the
/// kind, source and reference, so it imports into a spreadsheet or hledger.
pub async fn csv(
    State(state): State<AppState>,
    _: Signed,
    Query(q): Query<LedgerQuery>,
) -> Result<Response> {
    let filter = q.filter()?;
    const HEADER: &str =
        "date,entry_id,kind,source,amount,currency,reference,supporter_id,note,reverses_entry_id\n";
    let db = state.db.clone();
    let pages = futures::stream::unfold(Some(None), move |before: Option<Option<i64>>| {
        let (db, filter) = (db.clone(), filter.clone());
        async move {
            let before = before?;
            match store::ledger::list(&db, &filter, before, 1000).await {
                Ok(rows) => {
                    let next = (rows.len() == 1000).then(|| rows.last().map(|r| r.id));
                    Some((csv_rows(&rows), next))
                }
                Err(e) => {
                    tracing::error!(error = %e, "ledger export stopped");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    let head = futures::stream::once(async { Ok::<_, std::io::Error>(HEADER.to_owned()) });
    let body = Body::from_stream(futures::StreamExt::chain(head, pages));
    let name = format!("ledger-{}.csv", Utc::now().date_naive());
    Ok(download::csv(&name, body))
}

/// A choice from a select: blank is "any", anything else must parse.
fn choice<T>(text: &str, field: &str, parse: fn(&str) -> Option<T>) -> Result<Option<T>> {
    match text.trim() {
        "" => Ok(None),
        t => parse(t)
            .map(Some)
            .ok_or_else(|| Error::field(field, "is not one of the choices")),
    }
}

fn csv_rows(rows: &[EntryRow]) -> std::io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for e in rows {
        w.write_record([
            e.occurred_at.format("%Y-%m-%d").to_string(),
            e.id.to_string(),
            e.kind.as_str().to_owned(),
            e.source.as_str().to_owned(),
            Money::new(e.amount_minor, e.currency).decimal(),
            e.currency.code().to_owned(),
            e.external_ref.clone(),
            e.supporter_id.map(|i| i.to_string()).unwrap_or_default(),
            crate::domain::spreadsheet_safe(&e.note),
            e.reverses_entry_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
        ])?;
    }
    String::from_utf8(
        w.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    )
    .map_err(std::io::Error::other)
}
