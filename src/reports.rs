//! Monthly funding reports: money from the ledger aggregates, people and
//! recurring amounts from pledges, per month and per tier; JSON or CSV.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use chrono::{DateTime, Utc};

use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    domain::{
        ledger::KindSums,
        money::{Currency, Money, MoneyView, add},
        month::Month,
        pledge::monthly_recurring,
        tier::Interval,
    },
    error::Result,
    store::{
        self, Db,
        reports::{PatronCounts, PledgeSpan, TierPledges},
    },
};

#[derive(Debug, Serialize, ToSchema)]
pub struct MonthlyReport {
    pub currency: String,
    pub from: String,
    pub to: String,
    pub months: Vec<MonthReport>,
}

/// Refunds, disputes and fees are shown as positive amounts taken away:
/// net = gross − refunds − disputes − fees.
#[derive(Debug, Serialize, ToSchema)]
pub struct MonthReport {
    pub month: String,
    pub gross: MoneyView,
    pub refunds: MoneyView,
    pub disputes: MoneyView,
    pub fees: MoneyView,
    pub net: MoneyView,
    /// Patrons whose first pledge began this month.
    pub new_patrons: i64,
    /// Patrons whose pledge ended this month with none running at its end.
    pub churned_patrons: i64,
    pub active_patrons: i64,
    /// Recurring pledges running at the end of the month, per month.
    pub monthly_recurring: MoneyView,
    /// The same without pledges set to cancel at period end. Only for the
    /// month in progress: the flag is known as it is now, not as it was at
    /// the end of a past month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_monthly_recurring: Option<MoneyView>,
    pub tiers: Vec<TierReport>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TierReport {
    /// Null for money not tied to a tier (one-time and unattributed gifts).
    pub tier_id: Option<i64>,
    pub tier_name: String,
    pub gross: MoneyView,
    pub refunds: MoneyView,
    pub disputes: MoneyView,
    pub fees: MoneyView,
    pub net: MoneyView,
    pub new_pledges: i64,
    pub ended_pledges: i64,
    pub active_pledges: i64,
    pub monthly_recurring: MoneyView,
}

fn recurring(monthly_sum: i64, yearly_sum: i64) -> Result<i64> {
    monthly_recurring(monthly_sum, yearly_sum)
        .ok_or_else(|| crate::error::Error::internal("the monthly recurring total overflows"))
}

/// Reports already computed, per range, with the fingerprint of the books
/// they were computed from (`store::reports::fingerprint`): a page viewed
/// again is not computed again until something changes.
#[derive(Default)]
pub struct ReportCache(std::sync::Mutex<Vec<CachedReport>>);

/// A range, the fingerprint it was computed at, and the report.
type CachedReport = (Month, Month, String, Arc<MonthlyReport>);

/// Ranges kept; the overview's and a few others.
const CACHED_RANGES: usize = 8;

/// `monthly`, from the cache when the books have not changed since.
pub async fn monthly_cached(
    db: &Db,
    cache: &ReportCache,
    from: Month,
    to: Month,
) -> Result<Arc<MonthlyReport>> {
    let fingerprint = store::reports::fingerprint(db).await?;
    let hit = |entries: &Vec<CachedReport>| {
        entries
            .iter()
            .find(|(f, t, p, _)| (*f, *t) == (from, to) && *p == fingerprint)
            .map(|(.., r)| r.clone())
    };
    if let Some(report) = hit(&cache.0.lock().expect("report cache")) {
        return Ok(report);
    }
    let report = Arc::new(monthly(db, from, to).await?);
    let mut entries = cache.0.lock().expect("report cache");
    entries.retain(|(f, t, _, _)| (*f, *t) != (from, to));
    if entries.len() >= CACHED_RANGES {
        entries.remove(0);
    }
    entries.push((from, to, fingerprint, report.clone()));
    Ok(report)
}

pub async fn monthly(db: &Db, from: Month, to: Month) -> Result<MonthlyReport> {
    let months = Month::range(from, to)?;
    let currency: Currency = store::campaign::get(db).await?.currency;
    let money = |minor: i64| Money::new(minor, currency).view();
    let tiers = store::tiers::list(db, true).await?;

    // (month, tier_key) → sums; tier_key 0 is "no tier".
    let mut sums: BTreeMap<(String, i64), KindSums> = BTreeMap::new();
    for row in store::reports::ledger_sums(db, currency, from, to).await? {
        sums.entry((row.month, row.tier_key))
            .or_default()
            .add(row.kind, row.amount_minor)?;
    }

    let spans = store::reports::pledge_spans(db, to.end()).await?;
    let now = store::now();
    let mut out = Vec::with_capacity(months.len());
    for month in months {
        let key = month.to_string();
        let (start, end) = (month.start(), month.end());
        let (people, pledges) = pledge_figures(&spans, currency, start, end);

        let mut total = KindSums::default();
        let mut total_monthly = (0, 0);
        let mut committed = (0, 0);
        let mut tier_rows = Vec::new();
        let no_tier = sums.get(&(key.clone(), 0)).copied();
        for tier in &tiers {
            let s = sums.get(&(key.clone(), tier.id)).copied();
            let p = pledges.get(&tier.id).cloned().unwrap_or_default();
            let active = s.is_some() || p.started > 0 || p.ended > 0 || p.active_at_end > 0;
            if tier.archived && !active {
                continue;
            }
            let s = s.unwrap_or_default();
            total_monthly.0 = add(total_monthly.0, p.monthly_sum_at_end)?;
            total_monthly.1 = add(total_monthly.1, p.yearly_sum_at_end)?;
            committed.0 = add(committed.0, p.committed_monthly_sum_at_end)?;
            committed.1 = add(committed.1, p.committed_yearly_sum_at_end)?;
            tier_rows.push(TierReport {
                tier_id: Some(tier.id),
                tier_name: tier.name.clone(),
                gross: money(s.gross),
                refunds: money(s.refunds),
                disputes: money(s.disputes),
                fees: money(s.fees),
                net: money(s.net()?),
                new_pledges: p.started,
                ended_pledges: p.ended,
                active_pledges: p.active_at_end,
                monthly_recurring: money(recurring(p.monthly_sum_at_end, p.yearly_sum_at_end)?),
            });
        }
        if let Some(s) = no_tier {
            tier_rows.push(TierReport {
                tier_id: None,
                tier_name: "No tier".into(),
                gross: money(s.gross),
                refunds: money(s.refunds),
                disputes: money(s.disputes),
                fees: money(s.fees),
                net: money(s.net()?),
                new_pledges: 0,
                ended_pledges: 0,
                active_pledges: 0,
                monthly_recurring: money(0),
            });
        }
        for ((m, _), s) in sums.range((key.clone(), i64::MIN)..=(key.clone(), i64::MAX)) {
            debug_assert_eq!(m, &key);
            total.absorb(s)?;
        }
        out.push(MonthReport {
            month: key,
            gross: money(total.gross),
            refunds: money(total.refunds),
            disputes: money(total.disputes),
            fees: money(total.fees),
            net: money(total.net()?),
            new_patrons: people.new,
            churned_patrons: people.churned,
            active_patrons: people.active_at_end,
            monthly_recurring: money(recurring(total_monthly.0, total_monthly.1)?),
            committed_monthly_recurring: if start <= now && now < end {
                Some(money(recurring(committed.0, committed.1)?))
            } else {
                None
            },
            tiers: tier_rows,
        });
    }
    Ok(MonthlyReport {
        currency: currency.code().to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        months: out,
    })
}

/// One month's pledge figures from every pledge (sorted by supporter):
/// patrons who joined (their first patron pledge began), left (a patron
/// pledge ended with no pledge of theirs running at the month's end) and
/// were active at its end; and per tier, in `currency`, pledges started,
/// ended, and running at the end with their sums per interval.
fn pledge_figures(
    spans: &[PledgeSpan],
    currency: Currency,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> (PatronCounts, HashMap<i64, TierPledges>) {
    let running_at_end = |p: &PledgeSpan| p.started_at < end && p.ended_at.is_none_or(|e| e >= end);
    let mut people = PatronCounts::default();
    let mut tiers: HashMap<i64, TierPledges> = HashMap::new();
    for mine in spans.chunk_by(|a, b| a.supporter_id == b.supporter_id) {
        let patron = || mine.iter().filter(|p| p.patron == 1);
        if patron()
            .map(|p| p.started_at)
            .min()
            .is_some_and(|first| first >= start && first < end)
        {
            people.new += 1;
        }
        if patron().any(running_at_end) {
            people.active_at_end += 1;
        }
        let ended_here = patron().any(|p| p.ended_at.is_some_and(|e| e >= start && e < end));
        if ended_here && !mine.iter().any(running_at_end) {
            people.churned += 1;
        }
        for p in mine.iter().filter(|p| p.currency == currency.code()) {
            let Some(tier) = p.tier_id else { continue };
            let t = tiers.entry(tier).or_default();
            if p.started_at >= start && p.started_at < end {
                t.started += 1;
            }
            if p.ended_at.is_some_and(|e| e >= start && e < end) {
                t.ended += 1;
            }
            if running_at_end(p) {
                t.active_at_end += 1;
                match p.interval {
                    Interval::Month => t.monthly_sum_at_end += p.amount_minor,
                    Interval::Year => t.yearly_sum_at_end += p.amount_minor,
                }
                if !p.cancel_at_period_end {
                    match p.interval {
                        Interval::Month => t.committed_monthly_sum_at_end += p.amount_minor,
                        Interval::Year => t.committed_yearly_sum_at_end += p.amount_minor,
                    }
                }
            }
        }
    }
    tiers.retain(|_, t| t.started > 0 || t.ended > 0 || t.active_at_end > 0);
    (people, tiers)
}

/// The same report as CSV: one `total` row per month, then one row per tier.
/// Amounts are decimals in major units, so spreadsheets sum them exactly.
pub fn to_csv(report: &MonthlyReport) -> Result<String> {
    let currency = Currency::parse(&report.currency)
        .ok_or_else(|| crate::error::Error::internal("bad report currency"))?;
    let dec = |m: &MoneyView| Money::new(m.amount_minor, currency).decimal();
    let mut w = csv::Writer::from_writer(Vec::new());
    let header = [
        "month",
        "scope",
        "tier_id",
        "tier",
        "currency",
        "gross",
        "refunds",
        "disputes",
        "fees",
        "net",
        "new",
        "churned",
        "active",
        "monthly_recurring",
    ];
    let csv_err = |e: csv::Error| crate::error::Error::internal_from(e);
    w.write_record(header).map_err(csv_err)?;
    for m in &report.months {
        w.write_record([
            m.month.clone(),
            "total".into(),
            String::new(),
            String::new(),
            report.currency.clone(),
            dec(&m.gross),
            dec(&m.refunds),
            dec(&m.disputes),
            dec(&m.fees),
            dec(&m.net),
            m.new_patrons.to_string(),
            m.churned_patrons.to_string(),
            m.active_patrons.to_string(),
            dec(&m.monthly_recurring),
        ])
        .map_err(csv_err)?;
        for t in &m.tiers {
            w.write_record([
                m.month.clone(),
                "tier".into(),
                t.tier_id.map(|i| i.to_string()).unwrap_or_default(),
                crate::domain::spreadsheet_safe(&t.tier_name),
                report.currency.clone(),
                dec(&t.gross),
                dec(&t.refunds),
                dec(&t.disputes),
                dec(&t.fees),
                dec(&t.net),
                t.new_pledges.to_string(),
                t.ended_pledges.to_string(),
                t.active_pledges.to_string(),
                dec(&t.monthly_recurring),
            ])
            .map_err(csv_err)?;
        }
    }
    let bytes = w.into_inner().map_err(crate::error::Error::internal_from)?;
    String::from_utf8(bytes).map_err(crate::error::Error::internal_from)
}
