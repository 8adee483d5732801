//! The public transparency report: per month or quarter, where the money
//! came from, what it cost to run, and what is left.
//!
//! Privacy: every income figure follows `funding::publishable`. A period
//! whose income comes from fewer than `pages.privacy_threshold` people is
//! merged with the next one ("2026-01 to 2026-02") until enough people
//! are behind it, so the balances shown never tell a hidden period's sum by
//! subtraction either. Within a period, a source with too few people is
//! merged with others into "other income" until that line has enough
//! people too (at worst the period shows its total alone). The latest
//! periods without enough people yet are withheld and counted.
//!
//! Costs are the instance's, not a person's: they are all shown, under
//! their category and vendor where the owner marked it public, else as
//! "Other".

use serde::Serialize;
use utoipa::ToSchema;

use super::{
    funding::{Progress, publishable},
    money::{self, Currency, Money, MoneyView},
    month::Month,
    tier::TierKind,
};
use crate::error::Result;

/// The "costs covered" figures of the embed and badge.
#[derive(Debug, Clone)]
pub struct CostsCovered {
    /// The average of the last 3 complete months.
    pub monthly_costs: MoneyView,
    /// Monthly pledges over `monthly_costs`; None while the pledges total
    /// is not public.
    pub coverage: Option<Progress>,
}

/// Where income came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Patron tiers, monthly or yearly.
    Recurring,
    /// Gifts without a tier, paid online.
    OneTime,
    /// Sponsor tiers, by card or invoice.
    Sponsors,
    /// Contributions recorded by hand without a tier.
    Other,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::Recurring,
        Source::OneTime,
        Source::Sponsors,
        Source::Other,
    ];

    /// The source of a payment or manual entry, by its tier's kind.
    pub fn of(manual: bool, tier: Option<TierKind>) -> Source {
        match (tier, manual) {
            (Some(TierKind::Patron), _) => Source::Recurring,
            (Some(TierKind::Sponsor), _) => Source::Sponsors,
            (None, false) => Source::OneTime,
            (None, true) => Source::Other,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Source::Recurring => "Recurring",
            Source::OneTime => "One-time gifts",
            Source::Sponsors => "Sponsors",
            Source::Other => "Other income",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Monthly rows, or quarterly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    Month,
    Quarter,
}

impl Period {
    pub fn parse(s: Option<&str>) -> Option<Period> {
        match s.map(str::trim) {
            None | Some("" | "month") => Some(Period::Month),
            Some("quarter") => Some(Period::Quarter),
            _ => None,
        }
    }

    /// The complete periods of this kind ending at or before `last`, and
    /// starting at or after `first`, oldest first: `(first, last)` months.
    pub fn spans(self, first: Month, last: Month) -> Vec<(Month, Month)> {
        let mut out = Vec::new();
        let mut m = first;
        if self == Period::Quarter {
            // Start at the first whole quarter.
            while (m.month - 1) % 3 != 0 {
                m = m.next();
            }
        }
        let len = match self {
            Period::Month => 1,
            Period::Quarter => 3,
        };
        loop {
            let mut end = m;
            for _ in 1..len {
                end = end.next();
            }
            if end > last {
                break;
            }
            out.push((m, end));
            m = end.next();
        }
        out
    }
}

/// How a span of months is named: "2026-03", "2026 Q1", or a run of them.
pub fn label(period: Period, first: Month, last: Month) -> String {
    let one = |m: Month| match period {
        Period::Month => m.to_string(),
        Period::Quarter => format!("{} Q{}", m.year, m.month.div_ceil(3)),
    };
    let (a, b) = (one(first), one(last));
    if a == b { a } else { format!("{a} to {b}") }
}

/// One span's books, before any privacy rule: sums in minor units of the
/// campaign currency, positive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanFacts {
    pub first: Option<Month>,
    pub last: Option<Month>,
    /// Payments and manual contributions, by `Source` index.
    pub income: [i64; 4],
    /// Refunds and disputes.
    pub refunds: i64,
    pub fees: i64,
    /// `(category, vendor, amount)`, names already public or "Other".
    pub costs: Vec<(String, String, i64)>,
    /// The balance at the end of `last`, where the books say.
    pub balance: Option<i64>,
    /// The costs of the 3 months ending with `last` (for the runway).
    pub costs_last_3: i64,
}

impl SpanFacts {
    pub fn income_total(&self) -> Result<i64> {
        money::sum(self.income)
    }

    /// Anything here that tells of someone's money.
    pub fn has_income(&self) -> bool {
        self.income.iter().any(|a| *a != 0) || self.refunds != 0 || self.fees != 0
    }

    /// This span followed by `next`.
    pub fn then(mut self, next: SpanFacts) -> Result<SpanFacts> {
        self.first = self.first.or(next.first);
        self.last = next.last.or(self.last);
        for (a, b) in self.income.iter_mut().zip(next.income) {
            *a = money::add(*a, b)?;
        }
        self.refunds = money::add(self.refunds, next.refunds)?;
        self.fees = money::add(self.fees, next.fees)?;
        self.costs.extend(next.costs);
        self.balance = next.balance;
        self.costs_last_3 = next.costs_last_3;
        Ok(self)
    }
}

/// An income line as published.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct IncomeLine {
    /// The sources summed here (one, or several merged for privacy).
    pub sources: Vec<Source>,
    pub label: String,
    pub amount: MoneyView,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct CostLine {
    pub category: String,
    pub amount: MoneyView,
    /// The public vendors within it; money to other vendors is the rest.
    pub vendors: Vec<VendorCost>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct VendorCost {
    pub vendor: String,
    pub amount: MoneyView,
}

/// One published row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublicPeriod {
    /// "2026-03", "2026 Q1", or a run merged for privacy.
    pub label: String,
    /// First and last month, `YYYY-MM`.
    pub from: String,
    pub to: String,
    /// Income by source: recurring, one-time, sponsors, other. A source
    /// with too few people behind it is merged into another line.
    pub income: Vec<IncomeLine>,
    pub income_total: MoneyView,
    /// Refunds and disputes.
    pub refunds: MoneyView,
    /// Payment provider fees.
    pub fees: MoneyView,
    pub costs: Vec<CostLine>,
    pub costs_total: MoneyView,
    /// Income less refunds, fees and costs.
    pub result: MoneyView,
    /// At the end of the period; null before the books' opening month.
    pub balance: Option<MoneyView>,
    /// The balance over the average costs of the period's last 3 months,
    /// in tenths of a month rounded down; null without costs.
    pub runway_tenths: Option<i64>,
    /// Recurring and sponsor income as a share of costs, in the period;
    /// null without costs.
    pub coverage: Option<Progress>,
}

/// Turns a span into its published row. `split` is the income lines as
/// the privacy rule allows them: groups of sources, each with enough
/// people (see `split_sources`).
pub fn publish(
    span: &SpanFacts,
    split: &[Vec<Source>],
    currency: Currency,
    period: Period,
) -> Result<PublicPeriod> {
    let money = |minor: i64| Money::new(minor, currency).view();
    let (first, last) = (
        span.first.expect("a span has months"),
        span.last.expect("a span has months"),
    );
    let mut income = Vec::new();
    for group in split {
        let amount = money::sum(group.iter().map(|s| span.income[s.index()]))?;
        if amount != 0 {
            income.push(IncomeLine {
                sources: group.clone(),
                label: if group.len() == 1 {
                    group[0].label().to_owned()
                } else if split.len() == 1 {
                    "Income".to_owned()
                } else {
                    format!(
                        "Other income ({})",
                        group
                            .iter()
                            .map(|s| s.label().to_lowercase())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
                amount: money(amount),
            });
        }
    }
    let costs = cost_lines(&span.costs, currency)?;
    let costs_total = money::sum(span.costs.iter().map(|c| c.2))?;
    let income_total = span.income_total()?;
    let result = money::sub(
        income_total,
        money::sum([span.refunds, span.fees, costs_total])?,
    )?;
    let recurring = money::add(
        span.income[Source::Recurring.index()],
        span.income[Source::Sponsors.index()],
    )?;
    Ok(PublicPeriod {
        label: label(period, first, last),
        from: first.to_string(),
        to: last.to_string(),
        income,
        income_total: money(income_total),
        refunds: money(span.refunds),
        fees: money(span.fees),
        costs,
        costs_total: money(costs_total),
        result: money(result),
        balance: span.balance.map(money),
        runway_tenths: span
            .balance
            .and_then(|b| super::costs::runway_tenths(b, span.costs_last_3)),
        coverage: Progress::toward(recurring, costs_total),
    })
}

/// Costs by category, largest first; public vendors broken out.
fn cost_lines(costs: &[(String, String, i64)], currency: Currency) -> Result<Vec<CostLine>> {
    use std::collections::BTreeMap;
    let money = |minor: i64| Money::new(minor, currency).view();
    let mut by: BTreeMap<&str, (i64, BTreeMap<&str, i64>)> = BTreeMap::new();
    for (category, vendor, amount) in costs {
        let c = by.entry(category).or_default();
        c.0 = money::add(c.0, *amount)?;
        if vendor != OTHER {
            let v = c.1.entry(vendor).or_default();
            *v = money::add(*v, *amount)?;
        }
    }
    let mut lines: Vec<CostLine> = by
        .into_iter()
        .map(|(category, (amount, vendors))| CostLine {
            category: category.to_owned(),
            amount: money(amount),
            vendors: vendors
                .into_iter()
                .map(|(v, a)| VendorCost {
                    vendor: v.to_owned(),
                    amount: money(a),
                })
                .collect(),
        })
        .collect();
    // "Other" last, the rest largest first.
    lines.sort_by_key(|l| (l.category == OTHER, -l.amount.amount_minor));
    Ok(lines)
}

/// The name shown for a category or vendor the owner keeps private.
pub const OTHER: &str = "Other";

/// Groups the sources of a span into publishable income lines. `people`
/// counts, up to `threshold`, the people behind a set of sources. A source
/// with too few people joins the remainder; while the remainder has too
/// few, the smallest line joins it too. With nothing publishable, the
/// span shows its total alone (the caller only publishes spans whose total
/// has enough people).
pub fn split_sources(
    span: &SpanFacts,
    threshold: i64,
    mut people: impl FnMut(&[Source]) -> i64,
) -> Vec<Vec<Source>> {
    let present: Vec<Source> = Source::ALL
        .into_iter()
        .filter(|s| span.income[s.index()] != 0)
        .collect();
    let mut shown: Vec<(Source, i64)> = Vec::new();
    let mut rest: Vec<Source> = Vec::new();
    for s in present {
        let n = people(&[s]);
        if publishable(n, span.income[s.index()], threshold) {
            shown.push((s, n));
        } else {
            rest.push(s);
        }
    }
    while !rest.is_empty() {
        // Only compared with the threshold, so a saturated sum does.
        let amount = rest
            .iter()
            .fold(0i64, |a, s| a.saturating_add(span.income[s.index()]));
        if publishable(people(&rest), amount, threshold) {
            break;
        }
        // The smallest shown line joins the remainder.
        shown.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        match shown.pop() {
            Some((s, _)) => {
                rest.push(s);
                rest.sort();
            }
            None => break,
        }
    }
    let mut groups: Vec<Vec<Source>> = shown.into_iter().map(|(s, _)| vec![s]).collect();
    groups.sort();
    if !rest.is_empty() {
        groups.push(rest);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Month {
        Month::parse("m", s).unwrap()
    }

    fn span(income: [i64; 4]) -> SpanFacts {
        SpanFacts {
            first: Some(m("2026-01")),
            last: Some(m("2026-01")),
            income,
            ..SpanFacts::default()
        }
    }

    #[test]
    fn quarters_are_whole_and_named() {
        let q = Period::Quarter.spans(m("2025-11"), m("2026-08"));
        assert_eq!(
            q,
            vec![(m("2026-01"), m("2026-03")), (m("2026-04"), m("2026-06"))]
        );
        assert_eq!(
            label(Period::Quarter, m("2026-01"), m("2026-03")),
            "2026 Q1"
        );
        assert_eq!(
            label(Period::Quarter, m("2026-01"), m("2026-06")),
            "2026 Q1 to 2026 Q2"
        );
        assert_eq!(label(Period::Month, m("2026-01"), m("2026-01")), "2026-01");
        assert_eq!(Period::Month.spans(m("2026-01"), m("2026-03")).len(), 3);
    }

    #[test]
    fn a_source_with_too_few_people_is_merged_until_the_line_has_enough() {
        // Recurring: 40 people; one-time: 5; other: 1 (a single gift).
        let s = span([4000, 500, 0, 9000]);
        let people = |set: &[Source]| -> i64 {
            set.iter()
                .map(|s| match s {
                    Source::Recurring => 40,
                    Source::OneTime => 5,
                    Source::Sponsors => 0,
                    Source::Other => 1,
                })
                .sum::<i64>()
                .min(3)
        };
        let groups = split_sources(&s, 3, people);
        assert_eq!(
            groups,
            vec![
                vec![Source::Recurring],
                vec![Source::OneTime, Source::Other]
            ]
        );
        let row = publish(&s, &groups, Currency::parse("EUR").unwrap(), Period::Month).unwrap();
        assert_eq!(row.income.len(), 2);
        assert_eq!(row.income[1].amount.amount_minor, 9500);
        assert_eq!(
            row.income[1].label,
            "Other income (one-time gifts, other income)"
        );
        // Nobody's 90.00 shows on its own.
        assert!(row.income.iter().all(|l| l.amount.amount_minor != 9000));
    }

    #[test]
    fn with_one_person_in_every_source_only_the_total_shows() {
        let s = span([1000, 0, 5000, 0]);
        let groups = split_sources(&s, 3, |set| set.len() as i64);
        assert_eq!(groups, vec![vec![Source::Recurring, Source::Sponsors]]);
    }

    #[test]
    fn costs_group_by_public_category_with_public_vendors() {
        let costs = vec![
            ("Hosting".to_owned(), "Hetzner".to_owned(), 10000),
            ("Hosting".to_owned(), OTHER.to_owned(), 2000),
            (OTHER.to_owned(), OTHER.to_owned(), 50000),
            ("Email".to_owned(), OTHER.to_owned(), 500),
        ];
        let lines = cost_lines(&costs, Currency::parse("EUR").unwrap()).unwrap();
        let names: Vec<_> = lines.iter().map(|l| l.category.as_str()).collect();
        assert_eq!(names, ["Hosting", "Email", "Other"]);
        assert_eq!(lines[0].amount.amount_minor, 12000);
        assert_eq!(lines[0].vendors.len(), 1);
        assert_eq!(lines[0].vendors[0].amount.amount_minor, 10000);
    }
}
