//! Supporters: a filtered, sortable list in keyset pages with each one's
//! lifetime value and last payment; the whole filtered set as CSV; and a
//! page per supporter (pledges, payments, refunds, disputes, emails, audit)
//! with its actions: edit, management link, cancel a pledge, refund.

use axum::{body::Body, extract::State, response::Response};
use serde::{Deserialize, Serialize};

use super::{OwnerForm, Signed, after, page};
use crate::{
    domain::{
        ledger::EntryKind,
        money::{Currency, Money},
        month::Day,
        pledge::{PledgeStatus, Source},
        supporter::{SupporterKind, Visibility},
    },
    error::{Error, Result},
    http::{
        AppState, download,
        extract::{Path, Query},
    },
    service,
    store::{
        self, Page,
        directory::{Cursor, DirectoryFilter, DirectoryRow, SortKey},
        ledger::Filter,
    },
};

const PAGE: i64 = 50;

/// The list's filters and sort as the form sends them; blank means any.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    joined_from: String,
    #[serde(default)]
    joined_to: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    dir: String,
    /// The previous page's last row: "value|id" (skipped in links).
    #[serde(default, skip_serializing)]
    after: String,
}

struct Parsed {
    filter: DirectoryFilter,
    sort: SortKey,
    descending: bool,
    cursor: Option<Cursor>,
}

impl ListQuery {
    fn parse(&self) -> Result<Parsed> {
        let blank = |s: &str| s.trim().is_empty();
        let choice = |text: &str, field: &str, ok: &[&str]| -> Result<Option<String>> {
            match text.trim() {
                "" => Ok(None),
                t if ok.contains(&t) => Ok(Some(t.to_owned())),
                _ => Err(Error::field(field, "is not one of the choices")),
            }
        };
        let day = |field: &str, text: &str| -> Result<Option<Day>> {
            if blank(text) {
                return Ok(None);
            }
            Day::parse(field, text)
                .map(Some)
                .map_err(|e| Error::Validation(vec![e]))
        };
        let sort = if blank(&self.sort) {
            SortKey::Joined
        } else {
            SortKey::parse(self.sort.trim())
                .ok_or_else(|| Error::field("sort", "is not one of the choices"))?
        };
        let descending = match self.dir.trim() {
            "" => sort != SortKey::Name,
            "desc" => true,
            "asc" => false,
            _ => return Err(Error::field("dir", "must be asc or desc")),
        };
        let tier_id = match self.tier.trim() {
            "" => None,
            t => Some(
                t.parse()
                    .map_err(|_| Error::field("tier", "is not one of the choices"))?,
            ),
        };
        let cursor = match self.after.rsplit_once('|') {
            None => None,
            Some((value, id)) => {
                let id: i64 = id
                    .parse()
                    .map_err(|_| Error::field("after", "is not a page"))?;
                Some(match sort {
                    SortKey::Name => Cursor::Text(value.to_owned(), id),
                    _ => Cursor::Number(
                        value
                            .parse()
                            .map_err(|_| Error::field("after", "is not a page"))?,
                        id,
                    ),
                })
            }
        };
        let q: String = self.q.trim().chars().take(100).collect();
        Ok(Parsed {
            filter: DirectoryFilter {
                kind: choice(&self.kind, "kind", &["patron", "sponsor"])?
                    .and_then(|k| SupporterKind::parse(&k)),
                pledge_status: choice(
                    &self.status,
                    "status",
                    &["active", "past_due", "canceled", "none"],
                )?,
                tier_id,
                visibility: choice(
                    &self.visibility,
                    "visibility",
                    &["public", "private", "secret"],
                )?
                .and_then(|v| Visibility::parse(&v)),
                joined_from: day("joined_from", &self.joined_from)?.map(Day::start),
                joined_until: day("joined_to", &self.joined_to)?
                    .map(|d| d.start() + chrono::Duration::days(1)),
                q: Some(q).filter(|q| !q.is_empty()),
            },
            sort,
            descending,
            cursor,
        })
    }

    fn link(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// The link that sorts by `key`: flips the direction when it is the
    /// current sort.
    fn sort_link(&self, key: SortKey, current: SortKey, descending: bool) -> String {
        let mut q = self.clone();
        q.sort = key.as_str().into();
        q.dir = if key == current && descending {
            "asc"
        } else if key == current {
            "desc"
        } else {
            ""
        }
        .into();
        q.link()
    }
}

#[derive(Serialize)]
struct Row {
    id: i64,
    kind: &'static str,
    name: String,
    email: String,
    visibility: &'static str,
    status: String,
    tier: String,
    joined: String,
    lifetime: String,
    last_payment: String,
    fediverse_acct: String,
    fediverse_url: String,
}

fn row(r: DirectoryRow, currency: Currency) -> Row {
    Row {
        id: r.id,
        kind: r.kind.as_str(),
        name: r.display_name,
        email: r.email,
        visibility: r.visibility.as_str(),
        status: match (r.kind, r.sponsor_status) {
            (SupporterKind::Sponsor, Some(s)) => s.as_str().to_owned(),
            _ => r
                .pledge_status
                .unwrap_or_else(|| "none".into())
                .replace('_', " "),
        },
        tier: r.tier_name.unwrap_or_default(),
        joined: r.created_at.format("%Y-%m-%d").to_string(),
        lifetime: Money::new(r.lifetime_minor, currency).display(),
        last_payment: r
            .last_payment_at
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default(),
        fediverse_acct: r.fediverse_acct.unwrap_or_default(),
        fediverse_url: r.fediverse_url.unwrap_or_default(),
    }
}

#[derive(Serialize)]
struct Column {
    label: &'static str,
    href: String,
    /// "ascending"/"descending" on the sorted column (aria-sort).
    sorted: Option<&'static str>,
}

#[derive(Serialize)]
struct ListPage {
    q: ListQuery,
    rows: Vec<Row>,
    next: Option<String>,
    csv: String,
    tiers: Vec<(i64, String)>,
    columns: Vec<Column>,
    error: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let currency = service::tiers::campaign_currency(&state, None, "currency").await?;
    let (parsed, error) = match q.parse() {
        Ok(p) => (p, None),
        Err(e) => (
            ListQuery::default().parse()?,
            Some(super::Flash::error(&e).text),
        ),
    };
    let rows = store::directory::page(
        &state.db,
        &parsed.filter,
        parsed.sort,
        parsed.descending,
        parsed.cursor.as_ref(),
        PAGE,
    )
    .await?;
    let next = (rows.len() as i64 == PAGE)
        .then(|| rows.last())
        .flatten()
        .map(|last| {
            let after = match last.cursor(parsed.sort) {
                Cursor::Text(t, id) => format!("{t}|{id}"),
                Cursor::Number(n, id) => format!("{n}|{id}"),
            };
            format!(
                "{}&{}",
                q.link(),
                serde_urlencoded::to_string([("after", after)]).unwrap_or_default()
            )
        });
    let tiers = store::tiers::list(&state.db, true)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let columns = [
        (SortKey::Name, "Name"),
        (SortKey::Joined, "Joined"),
        (SortKey::Lifetime, "Lifetime"),
    ]
    .into_iter()
    .map(|(key, label)| Column {
        label,
        href: q.sort_link(key, parsed.sort, parsed.descending),
        sorted: (key == parsed.sort).then_some(if parsed.descending {
            "descending"
        } else {
            "ascending"
        }),
    })
    .collect();
    page(
        &signed,
        "supporters.html",
        "supporters",
        ListPage {
            csv: format!("/admin/supporters.csv?{}", q.link()),
            rows: rows.into_iter().map(|r| row(r, currency)).collect(),
            q,
            next,
            tiers,
            columns,
            error,
        },
    )
}

/// Every supporter the filter selects, as CSV, read a page at a time so
/// memory stays flat however many there are.
pub async fn csv(
    State(state): State<AppState>,
    _: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response> {
    let parsed = q.parse()?;
    let currency = service::tiers::campaign_currency(&state, None, "currency").await?;
    const HEADER: &str = "id,kind,name,email,visibility,status,tier,joined,lifetime_value,currency,last_payment,fediverse_acct,fediverse_url\n";
    let db = state.db.clone();
    let (filter, sort, descending) = (parsed.filter, parsed.sort, parsed.descending);
    let pages = futures::stream::unfold(Some(None::<Cursor>), move |cursor| {
        let (db, filter) = (db.clone(), filter.clone());
        async move {
            let cursor = cursor?;
            match store::directory::page(&db, &filter, sort, descending, cursor.as_ref(), 1000)
                .await
            {
                Ok(rows) => {
                    let next = (rows.len() == 1000)
                        .then(|| rows.last().map(|r| r.cursor(sort)))
                        .flatten();
                    let text = csv_rows(rows, currency);
                    Some((text, next.map(Some)))
                }
                Err(e) => {
                    tracing::error!(error = %e, "supporter export stopped");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    let head = futures::stream::once(async { Ok::<_, std::io::Error>(HEADER.to_owned()) });
    let name = format!("supporters-{}.csv", store::now().date_naive());
    Ok(download::csv(
        &name,
        Body::from_stream(futures::StreamExt::chain(head, pages)),
    ))
}

fn csv_rows(rows: Vec<DirectoryRow>, currency: Currency) -> std::io::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        let lifetime = Money::new(r.lifetime_minor, currency).decimal();
        let v = row(r, currency);
        w.write_record([
            v.id.to_string(),
            v.kind.to_owned(),
            crate::domain::spreadsheet_safe(&v.name),
            v.email,
            v.visibility.to_owned(),
            v.status,
            crate::domain::spreadsheet_safe(&v.tier),
            v.joined,
            lifetime,
            currency.code().to_owned(),
            v.last_payment,
            v.fediverse_acct,
            crate::domain::spreadsheet_safe(&v.fediverse_url),
        ])?;
    }
    String::from_utf8(
        w.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    )
    .map_err(std::io::Error::other)
}

#[derive(Serialize)]
struct PledgeView {
    id: i64,
    tier: String,
    amount: String,
    interval: &'static str,
    status: &'static str,
    source: &'static str,
    started: String,
    ended: Option<String>,
    cancellable: bool,
    stripe: bool,
}

#[derive(Serialize)]
struct EntryView {
    id: i64,
    date: String,
    kind: &'static str,
    amount: String,
    reference: String,
    refundable: bool,
}

#[derive(Serialize)]
struct MailView {
    template: String,
    status: &'static str,
    when: String,
    error: Option<String>,
}

#[derive(Serialize)]
struct AuditView {
    at: String,
    actor: String,
    action: String,
    details: String,
}

#[derive(Serialize)]
struct DetailPage {
    id: i64,
    kind: &'static str,
    name: String,
    email: String,
    visibility: &'static str,
    website: Option<String>,
    fediverse_acct: Option<String>,
    fediverse_url: Option<String>,
    sponsor_status: Option<&'static str>,
    joined: String,
    pledges: Vec<PledgeView>,
    entries: Vec<EntryView>,
    mails: Vec<MailView>,
    audit: Vec<AuditView>,
    payments_on: bool,
}

pub async fn show(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<i64>,
) -> Result<Response> {
    let s = store::supporters::get(&state.db, id).await?;
    let tiers = store::tiers::list(&state.db, true).await?;
    let tier_name = |tid: Option<i64>| {
        tiers
            .iter()
            .find(|t| Some(t.id) == tid)
            .map(|t| t.name.clone())
            .unwrap_or_else(|| "—".into())
    };
    let pledges = store::pledges::list(
        &state.db,
        Some(id),
        Page {
            after: 0,
            limit: 200,
        },
    )
    .await?
    .into_iter()
    .map(|p| PledgeView {
        id: p.id,
        tier: tier_name(p.tier_id),
        amount: Money::new(p.amount_minor, p.currency).display(),
        interval: p.interval.as_str(),
        status: p.status.as_str(),
        source: p.source.as_str(),
        started: p.started_at.format("%Y-%m-%d").to_string(),
        ended: p.ended_at.map(|t| t.format("%Y-%m-%d").to_string()),
        cancellable: p.status != PledgeStatus::Canceled,
        stripe: p.source == Source::Stripe,
    })
    .collect();
    let filter = Filter {
        supporter_id: Some(id),
        ..Filter::default()
    };
    let entries = store::ledger::list(&state.db, &filter, None, 200)
        .await?
        .into_iter()
        .map(|e| EntryView {
            refundable: e.kind == EntryKind::Payment && e.source == Source::Stripe,
            id: e.id,
            date: e.occurred_at.format("%Y-%m-%d").to_string(),
            kind: e.kind.as_str(),
            amount: Money::new(e.amount_minor, e.currency).display(),
            reference: e.external_ref,
        })
        .collect();
    let mails = store::outbox::for_supporter(&state.db, id, 50)
        .await?
        .into_iter()
        .map(|m| MailView {
            template: m.template.replace('_', " "),
            status: m.status.as_str(),
            when: m
                .sent_at
                .unwrap_or(m.created_at)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            error: m.last_error,
        })
        .collect();
    let audit = store::audit::for_target(&state.db, "supporter", id, 50)
        .await?
        .into_iter()
        .map(|a| AuditView {
            at: a.at.format("%Y-%m-%d %H:%M").to_string(),
            actor: a.actor,
            action: a.action,
            details: a.details,
        })
        .collect();
    page(
        &signed,
        "supporter.html",
        "supporters",
        DetailPage {
            id,
            kind: s.kind.as_str(),
            name: s.display_name,
            email: s.email,
            visibility: s.visibility.as_str(),
            website: s.website_url,
            fediverse_acct: s.fediverse_acct,
            fediverse_url: s.fediverse_url,
            sponsor_status: s.sponsor_status.map(|st| st.as_str()),
            joined: s.created_at.format("%Y-%m-%d").to_string(),
            pledges,
            entries,
            mails,
            audit,
            payments_on: state.gateway.is_some(),
        },
    )
}

#[derive(Deserialize)]
pub struct ProfileForm {
    name: String,
    visibility: String,
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, form }: OwnerForm<ProfileForm>,
) -> Result<Response> {
    let outcome = async {
        let visibility = Visibility::parse(&form.visibility)
            .ok_or_else(|| Error::field("visibility", "is not one of the choices"))?;
        let row = service::supporters::update_profile(
            &state,
            &signed.admin.actor(),
            id,
            &form.name,
            visibility,
        )
        .await?;
        Ok(format!("Saved {}.", row.display_name))
    }
    .await;
    after(signed.cookies, &format!("/admin/supporters/{id}"), outcome)
}

#[derive(Deserialize)]
pub struct Confirm {}

pub async fn manage_link(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    OwnerForm { signed, .. }: OwnerForm<Confirm>,
) -> Result<Response> {
    let outcome = service::supporters::send_manage_link(&state, &signed.admin.actor(), id)
        .await
        .map(|()| "A management link is on its way by email.".to_owned());
    after(signed.cookies, &format!("/admin/supporters/{id}"), outcome)
}

#[derive(Deserialize)]
pub struct CancelForm {
    /// "period_end" or "now".
    when: String,
    #[serde(default)]
    reason: String,
}

pub async fn cancel_pledge(
    State(state): State<AppState>,
    Path((id, pledge_id)): Path<(i64, i64)>,
    OwnerForm { signed, form }: OwnerForm<CancelForm>,
) -> Result<Response> {
    let outcome = async {
        let pledge = store::pledges::get(&state.db, pledge_id).await?;
        if pledge.supporter_id != id {
            return Err(Error::NotFound("pledge"));
        }
        let at_period_end = match form.when.as_str() {
            "period_end" => true,
            "now" => false,
            _ => return Err(Error::field("when", "must be period_end or now")),
        };
        service::pledges::cancel(
            &state,
            &signed.admin.actor(),
            pledge_id,
            at_period_end,
            &form.reason,
        )
        .await?;
        Ok(if at_period_end {
            format!("Pledge #{pledge_id} ends at the end of its period.")
        } else {
            format!("Pledge #{pledge_id} is cancelled.")
        })
    }
    .await;
    after(signed.cookies, &format!("/admin/supporters/{id}"), outcome)
}

#[derive(Deserialize)]
pub struct RefundForm {
    /// Blank refunds what remains of the payment.
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

pub async fn refund(
    State(state): State<AppState>,
    Path((id, entry_id)): Path<(i64, i64)>,
    OwnerForm { signed, form }: OwnerForm<RefundForm>,
) -> Result<Response> {
    let outcome = async {
        let entry = store::ledger::get(&state.db, entry_id).await?;
        if entry.supporter_id != Some(id) {
            return Err(Error::NotFound("payment"));
        }
        let amount = match form.amount.trim() {
            "" => None,
            a => Some(
                Money::parse_decimal(a, entry.currency)
                    .map_err(|m| Error::field("amount", m))?
                    .amount_minor,
            ),
        };
        let row = service::payments::refund(
            &state,
            &signed.admin.actor(),
            entry_id,
            amount,
            &form.reason,
        )
        .await?;
        Ok(format!(
            "Refunded {} of payment #{entry_id}.",
            Money::new(-row.amount_minor, row.currency).display()
        ))
    }
    .await;
    after(signed.cookies, &format!("/admin/supporters/{id}"), outcome)
}
