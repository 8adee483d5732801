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
        month::{Month, Window},
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
    let figures = pledge_figures(&spans, currency, Window::new(from, to));
    let now = store::now();
    let mut out = Vec::with_capacity(months.len());
    for (month, (people, pledges)) in months.into_iter().zip(figures) {
        let key = month.to_string();
        let (start, end) = (month.start(), month.end());

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

/// Each month's pledge figures, from every pledge (sorted by supporter) in
/// one pass: patrons who joined (their first patron pledge began), left (a
/// patron pledge ended with no pledge of theirs running at the month's end)
/// and were active at its end; and per tier, in `currency`, pledges
/// started, ended, and running at the end with their sums per interval.
///
/// A pledge runs at the end of month `m` when it started in `m` or before
/// and ended after `m`: a range of months, so a supporter's months are
/// bits of a `u128` (a report has at most 120) and a tier's running sums
/// are a difference array, added up once at the end.
fn pledge_figures(
    spans: &[PledgeSpan],
    currency: Currency,
    window: Window,
) -> Vec<(PatronCounts, HashMap<i64, TierPledges>)> {
    let n = window.months as i64;
    debug_assert!(n <= 128);
    // The month it falls in, from 0 (or before: negative) to n (or after).
    let at = |t: DateTime<Utc>| window.index_of(t).clamp(-1, n);
    let in_window = |m: i64| (0..n).contains(&m);
    // The months, within the window, at whose end the pledge runs.
    let running = |p: &PledgeSpan| {
        let first = at(p.started_at).max(0);
        let last = p.ended_at.map_or(n, at) - 1;
        (first <= last.min(n - 1)).then_some((first as usize, last.min(n - 1) as usize))
    };
    let bits = |(first, last): (usize, usize)| (u128::MAX >> (127 - (last - first))) << first;

    let mut people = vec![PatronCounts::default(); window.months];
    // Per tier, per month (one more for the difference arrays' ends).
    let mut tiers: HashMap<i64, Vec<TierPledges>> = HashMap::new();
    for mine in spans.chunk_by(|a, b| a.supporter_id == b.supporter_id) {
        let patron = || mine.iter().filter(|p| p.patron == 1);
        if let Some(first) = patron().map(|p| at(p.started_at)).min()
            && in_window(first)
        {
            people[first as usize].new += 1;
        }
        let patron_running = patron().filter_map(running).fold(0, |acc, r| acc | bits(r));
        let any_running = mine
            .iter()
            .filter_map(running)
            .fold(0, |acc, r| acc | bits(r));
        let patron_ended = patron()
            .filter_map(|p| p.ended_at.map(at))
            .filter(|&m| in_window(m))
            .fold(0u128, |acc, m| acc | 1 << m);
        for (m, month) in people.iter_mut().enumerate() {
            month.active_at_end += (patron_running >> m & 1) as i64;
            month.churned += ((patron_ended & !any_running) >> m & 1) as i64;
        }

        for p in mine.iter().filter(|p| p.currency == currency.code()) {
            let Some(tier) = p.tier_id else { continue };
            let t = tiers
                .entry(tier)
                .or_insert_with(|| vec![TierPledges::default(); window.months + 1]);
            let started = at(p.started_at);
            if in_window(started) {
                t[started as usize].started += 1;
            }
            if let Some(ended) = p.ended_at.map(at).filter(|&m| in_window(m)) {
                t[ended as usize].ended += 1;
            }
            if let Some((first, last)) = running(p) {
                for (k, sign) in [(first, 1), (last + 1, -1)] {
                    let d = &mut t[k];
                    d.active_at_end += sign;
                    let (sum, committed) = match p.interval {
                        Interval::Month => (
                            &mut d.monthly_sum_at_end,
                            &mut d.committed_monthly_sum_at_end,
                        ),
                        Interval::Year => {
                            (&mut d.yearly_sum_at_end, &mut d.committed_yearly_sum_at_end)
                        }
                    };
                    *sum += sign * p.amount_minor;
                    if !p.cancel_at_period_end {
                        *committed += sign * p.amount_minor;
                    }
                }
            }
        }
    }

    let mut months: Vec<HashMap<i64, TierPledges>> = vec![HashMap::new(); window.months];
    for (tier, mut t) in tiers {
        for m in 0..window.months {
            if m > 0 {
                let (before, here) = t.split_at_mut(m);
                let (prev, cur) = (&before[m - 1], &mut here[0]);
                cur.active_at_end += prev.active_at_end;
                cur.monthly_sum_at_end += prev.monthly_sum_at_end;
                cur.yearly_sum_at_end += prev.yearly_sum_at_end;
                cur.committed_monthly_sum_at_end += prev.committed_monthly_sum_at_end;
                cur.committed_yearly_sum_at_end += prev.committed_yearly_sum_at_end;
            }
            let f = &t[m];
            if f.started > 0 || f.ended > 0 || f.active_at_end > 0 {
                months[m].insert(tier, f.clone());
            }
        }
    }
    people.into_iter().zip(months).collect()
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
