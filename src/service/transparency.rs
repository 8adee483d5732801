//! The public transparency report, assembled from the books (income from
//! `ledger_monthly`, costs and balances from `service::costs`) under the
//! privacy rule of `domain::transparency`. The public snapshot builds it;
//! nothing here is served from a request.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    domain::{
        costs::{self as rules, LabelKind, month_of},
        funding::Progress,
        money::{self, Currency, Money, MoneyView},
        month::Month,
        tier::TierKind,
        transparency::{self, OTHER, Period, PublicPeriod, Source, SpanFacts},
    },
    error::Result,
    store::{self, Db},
};

/// At most this many months are shown (24 months, or 8 quarters).
pub const MONTHS_SHOWN: u32 = 24;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transparency {
    pub currency: String,
    pub period: Period,
    /// Complete periods, oldest first.
    pub periods: Vec<PublicPeriod>,
    /// The latest complete months not shown yet: too few people have given
    /// in them so far for their income to be published. Null when none.
    pub withheld_from: Option<String>,
    /// `costs.runway_target_months`.
    pub runway_target_months: u32,
    /// Monthly recurring pledges over the average monthly costs of the last
    /// 3 complete months; null without costs or while the recurring total
    /// is not public (see `/api/v1/funding`).
    pub coverage_now: Option<Progress>,
    /// The average monthly costs of the last 3 complete months.
    pub monthly_costs: MoneyView,
}

impl Transparency {
    /// The embed's and badge's "costs covered" figures; None without costs.
    pub fn costs_covered(&self) -> Option<transparency::CostsCovered> {
        (self.monthly_costs.amount_minor > 0).then(|| transparency::CostsCovered {
            monthly_costs: self.monthly_costs.clone(),
            coverage: self.coverage_now.clone(),
        })
    }

    /// The latest period shown.
    pub fn latest(&self) -> Option<&PublicPeriod> {
        self.periods.last()
    }
}

/// Per month and source, up to `threshold` of the people who gave (their
/// keys), with the entries the month held when they were found: they stay
/// good while that count is unchanged. Any union of months and sources is
/// counted from them: a set shorter than the threshold is everyone, and a
/// full one alone meets it.
#[derive(Default)]
pub struct PeopleMemo(Mutex<HashMap<(Month, Source), Found>>);

/// The month's entry count when read, and the people found.
type Found = (i64, Vec<i64>);

/// The reports last built, by month and by quarter, with what they were
/// built from: the public snapshot is rebuilt on every write, and these
/// change only when a past month's books do.
#[derive(Default)]
pub struct ReportCache {
    pub people: PeopleMemo,
    last: Mutex<Option<(String, Arc<Reports>)>>,
}

/// The report by month, and by quarter.
pub type Reports = (Transparency, Transparency);

/// Both reports, from the cache while nothing they show has changed.
pub async fn reports(
    db: &Db,
    cache: &ReportCache,
    today: NaiveDate,
    privacy_threshold: i64,
    runway_target_months: u32,
    monthly_recurring: Option<i64>,
) -> Result<Arc<Reports>> {
    let fingerprint = format!(
        "{} {privacy_threshold} {runway_target_months} {monthly_recurring:?}",
        store::transparency::fingerprint(db, month_of(today)).await?
    );
    if let Some((f, r)) = cache.last.lock().expect("cache").as_ref()
        && *f == fingerprint
    {
        return Ok(r.clone());
    }
    let inputs = Inputs {
        today,
        privacy_threshold,
        runway_target_months,
        monthly_recurring,
        memo: &cache.people,
    };
    let built = Arc::new((
        report(db, Period::Month, &inputs).await?,
        report(db, Period::Quarter, &inputs).await?,
    ));
    *cache.last.lock().expect("cache") = Some((fingerprint, built.clone()));
    Ok(built)
}

/// What the report needs besides the books.
pub struct Inputs<'a> {
    pub today: NaiveDate,
    pub privacy_threshold: i64,
    pub runway_target_months: u32,
    /// The public monthly recurring total, when it may be shown.
    pub monthly_recurring: Option<i64>,
    pub memo: &'a PeopleMemo,
}

pub async fn report(db: &Db, period: Period, inputs: &Inputs<'_>) -> Result<Transparency> {
    let currency = store::campaign::get(db).await?.currency;
    let current = month_of(inputs.today);
    let last = current.back(1);
    let first = current.back(MONTHS_SHOWN);
    // Two months more for the first months' runway.
    let costs = crate::service::costs::report(
        db,
        first.back(2),
        last,
        inputs.today,
        inputs.runway_target_months,
    )
    .await?;
    let public_categories: HashSet<String> = store::costs::public_names(db, LabelKind::Category)
        .await?
        .into_iter()
        .collect();
    let public_vendors: HashSet<String> = store::costs::public_names(db, LabelKind::Vendor)
        .await?
        .into_iter()
        .collect();

    let mut months: BTreeMap<Month, SpanFacts> = BTreeMap::new();
    for m in Month::range(first, last)? {
        months.insert(
            m,
            SpanFacts {
                first: Some(m),
                last: Some(m),
                ..SpanFacts::default()
            },
        );
    }
    for cell in store::transparency::income(db, currency, first, last).await? {
        let Some(f) = Month::parse("month", &cell.month)
            .ok()
            .and_then(|m| months.get_mut(&m))
        else {
            continue;
        };
        let tier = match cell.tier_kind.as_str() {
            "patron" => Some(TierKind::Patron),
            "sponsor" => Some(TierKind::Sponsor),
            _ => None,
        };
        match cell.kind.as_str() {
            "payment" | "manual" => {
                let s = Source::of(cell.kind == "manual", tier);
                f.income[s as usize] += cell.amount_minor;
            }
            "refund" | "dispute" => f.refunds -= cell.amount_minor,
            "fee" => f.fees -= cell.amount_minor,
            _ => {}
        }
    }
    for e in store::transparency::costs(db, currency, first, last).await? {
        let Some(f) = Month::parse("month", &e.month)
            .ok()
            .and_then(|m| months.get_mut(&m))
        else {
            continue;
        };
        let public = |set: &HashSet<String>, name: String| {
            if set.contains(&name) {
                name
            } else {
                OTHER.to_owned()
            }
        };
        let category = public(&public_categories, e.category);
        // A vendor is named only under a category that is named too.
        let vendor = if category == OTHER {
            OTHER.to_owned()
        } else {
            public(&public_vendors, e.vendor)
        };
        f.costs.push((category, vendor, e.amount_minor));
    }
    // Balances and the costs behind each month's runway.
    let expenses: Vec<(Month, i64)> = costs
        .months
        .iter()
        .filter_map(|c| {
            Some((
                Month::parse("month", &c.month).ok()?,
                c.expenses.amount_minor,
            ))
        })
        .collect();
    for c in &costs.months {
        let Some(f) = Month::parse("month", &c.month)
            .ok()
            .and_then(|m| months.get_mut(&m))
        else {
            continue;
        };
        f.balance = c.balance.as_ref().map(|b| b.amount_minor);
        let m = f.last.expect("a month");
        f.costs_last_3 = money::sum(
            expenses
                .iter()
                .filter(|(e, _)| *e <= m && *e >= m.back(2))
                .map(|(_, a)| *a),
        )?;
    }

    // Periods, leading empty ones dropped.
    let mut spans: Vec<SpanFacts> = period
        .spans(first, last)
        .into_iter()
        .map(|(a, b)| {
            let mut span: Option<SpanFacts> = None;
            for m in Month::range(a, b).unwrap_or_default() {
                if let Some(facts) = months.get(&m).cloned() {
                    span = Some(match span {
                        Some(s) => s.then(facts)?,
                        None => facts,
                    });
                }
            }
            Ok(span.unwrap_or_default())
        })
        .collect::<Result<_>>()?;
    let started = spans
        .iter()
        .position(|s| s.has_income() || !s.costs.is_empty())
        .unwrap_or(spans.len());
    spans.drain(..started);

    let entries: HashMap<Month, i64> = store::transparency::entries_per_month(db, first, last)
        .await?
        .into_iter()
        .filter_map(|(m, n)| Some((Month::parse("month", &m).ok()?, n)))
        .collect();
    let threshold = inputs.privacy_threshold;
    inputs
        .memo
        .0
        .lock()
        .expect("memo")
        .retain(|(m, _), _| *m >= first);
    let mut periods = Vec::new();
    let mut run: Option<SpanFacts> = None;
    for span in spans {
        let open = match run.take() {
            Some(r) => r.then(span)?,
            None => span,
        };
        let (a, b) = (open.first.expect("months"), open.last.expect("months"));
        let present: Vec<Source> = Source::ALL
            .into_iter()
            .filter(|s| open.income[*s as usize] != 0)
            .collect();
        let months = Month::range(a, b)?;
        let mut found: HashMap<(Month, Source), Vec<i64>> = HashMap::new();
        for m in &months {
            for s in &present {
                let signature = entries.get(m).copied().unwrap_or(0);
                let keys = people(db, currency, inputs.memo, *m, *s, signature, threshold).await?;
                found.insert((*m, *s), keys);
            }
        }
        let count_of = |set: &[Source]| -> i64 {
            let mut union = HashSet::new();
            for m in &months {
                for s in set {
                    let keys = found.get(&(*m, *s)).map(Vec::as_slice).unwrap_or_default();
                    if keys.len() as i64 >= threshold {
                        return threshold;
                    }
                    union.extend(keys.iter().copied());
                }
            }
            (union.len() as i64).min(threshold)
        };
        let everyone = count_of(&present);
        if open.has_income() && !crate::domain::funding::publishable(everyone, 1, threshold) {
            // Too few people behind this period: it waits for the next.
            run = Some(open);
            continue;
        }
        let groups = transparency::split_sources(&open, threshold, count_of);
        periods.push(transparency::publish(&open, &groups, currency, period)?);
    }

    let money = |minor: i64| Money::new(minor, currency).view();
    let sum_averaged = money::sum(
        rules::averaged_months(current)
            .iter()
            .filter_map(|m| expenses.iter().find(|(e, _)| e == m).map(|(_, a)| *a)),
    )?;
    Ok(Transparency {
        currency: currency.code().to_owned(),
        period,
        periods,
        withheld_from: run.and_then(|r| r.first).map(|m| m.to_string()),
        runway_target_months: inputs.runway_target_months,
        coverage_now: inputs
            .monthly_recurring
            .and_then(|r| rules::coverage_basis_points(r, sum_averaged))
            .map(|bp| Progress {
                percent: bp / 100,
                basis_points: bp,
            }),
        monthly_costs: money(rules::monthly_costs(sum_averaged)),
    })
}

/// Up to `threshold` people who gave to `source` in `month`, from the memo
/// while the month's entries are unchanged.
async fn people(
    db: &Db,
    currency: Currency,
    memo: &PeopleMemo,
    month: Month,
    source: Source,
    signature: i64,
    threshold: i64,
) -> Result<Vec<i64>> {
    let k = (month, source);
    if let Some((sig, keys)) = memo.0.lock().expect("memo").get(&k)
        && *sig == signature
    {
        return Ok(keys.clone());
    }
    let keys =
        store::transparency::givers(db, currency, source, month.start(), month.end(), threshold)
            .await?;
    memo.0
        .lock()
        .expect("memo")
        .insert(k, (signature, keys.clone()));
    Ok(keys)
}
