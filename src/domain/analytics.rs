//! Revenue analytics, computed in one pass over every pledge: monthly
//! recurring revenue (MRR) movements, cohorts, concentration and a
//! forecast. Pure arithmetic on integer minor units: no I/O, no floats.
//!
//! # MRR
//! A pledge's MRR is its monthly equivalent (`pledge::monthly_equivalent`:
//! a yearly pledge counts as a twelfth, floored per pledge, so every sum
//! below is additive: tiers sum to the total, supporters to their tier).
//! A supporter's MRR at an instant is the sum over their pledges running
//! then (`started_at < t` and not ended before `t`), as the monthly report
//! counts them. A month's *start* is the instant it begins and its *end*
//! the instant the next month begins.
//!
//! # Movements (ChartMogul's rules on each supporter's total MRR)
//! With `a` a supporter's MRR at the start of a month and `b` at its end:
//! - `a = 0 < b`: **reactivation** if a pledge of theirs began before the
//!   month (a former supporter returning), else **new**;
//! - `0 < a < b`: **expansion** by `b − a`;
//! - `0 < b < a`: **contraction** by `a − b` (a cancelled pledge while
//!   another one still runs is contraction, not churn);
//! - `a > 0 = b`: **churn** of `a`, only when no pledge of theirs runs at
//!   the end;
//! - `a = b`: no movement (a pledge that starts and ends inside one month,
//!   or a move between tiers at the same amount, moves nothing).
//!
//! # Per tier
//! The same supporter's MRR on one tier changes by `d = b_t − a_t`. The
//! whole of `d` is classified by what the supporter did overall:
//! - `d > 0`: new or reactivation when the supporter had no MRR at the
//!   start (as overall), else **expansion**;
//! - `d < 0`: churn when the supporter has no MRR at the end, else
//!   **contraction**.
//!
//! So a move from a €10 tier to a €25 tier is contraction of €10 on the
//! first and expansion of €25 on the second (overall: expansion of €15).
//! New, reactivation and churn per tier sum exactly to the overall
//! figures; expansion − contraction per tier sums to the overall net
//! expansion. Every tier's month satisfies, exactly,
//! `start + new + expansion + reactivation − contraction − churn = end`,
//! as does the total.
//!
//! # Cost
//! Each supporter's pledges become events at month boundaries (start,
//! end); only the months where something changes are visited. With `P`
//! pledges, `M` months and `T` tiers a report costs
//! `O(P log p + M × T)` (`p` the most pledges one supporter has).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::{
    money::MAX_AMOUNT_MINOR,
    month::{Month, Window},
    pledge::monthly_equivalent,
    tier::Interval,
};

/// A pledge as analytics reads it (in the campaign currency, on a tier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pledge {
    pub supporter_id: i64,
    pub tier_id: i64,
    /// On a sponsor tier (a company), not a patron tier.
    pub sponsor: bool,
    pub interval: Interval,
    pub amount_minor: i64,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Its renewal failed and is being retried.
    pub past_due: bool,
    /// Set to end when the paid period ends.
    pub cancel_at_period_end: bool,
    /// The end of the paid period, when known (Stripe).
    pub current_period_end: Option<DateTime<Utc>>,
    /// For a sponsorship paid on terms without automatic renewal: the last
    /// day paid for (the sponsor's `paid_through`).
    pub term_end: Option<NaiveDate>,
}

impl Pledge {
    pub fn monthly(&self) -> i64 {
        monthly_equivalent(self.amount_minor, self.interval)
    }

    /// Running at instant `t`, as the monthly report counts it.
    pub fn running_at(&self, t: DateTime<Utc>) -> bool {
        self.started_at < t && self.ended_at.is_none_or(|e| e >= t)
    }
}

/// Inputs too large for the sums to be certain to fit in i64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many pledges or too large an amount for exact sums")]
pub struct TooLarge;

/// With every amount at most `MAX_AMOUNT_MINOR`, sums of this many never
/// overflow i64 (and squares of shares are taken in i128).
const MAX_PLEDGES: usize = 9_000_000;

fn check(pledges: &[Pledge]) -> Result<(), TooLarge> {
    if pledges.len() > MAX_PLEDGES
        || pledges
            .iter()
            .any(|p| p.amount_minor < 0 || p.amount_minor > MAX_AMOUNT_MINOR)
    {
        return Err(TooLarge);
    }
    Ok(())
}

/// What moved a supporter's MRR in a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    New,
    Expansion,
    Reactivation,
    Contraction,
    Churn,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::New,
        Kind::Expansion,
        Kind::Reactivation,
        Kind::Contraction,
        Kind::Churn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::Expansion => "expansion",
            Kind::Reactivation => "reactivation",
            Kind::Contraction => "contraction",
            Kind::Churn => "churn",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A supporter's overall movement: `before` and `after` are their MRR at
/// the month's start and end; `returning` that a pledge of theirs began
/// before the month. The amount is always positive.
pub fn classify(before: i64, after: i64, returning: bool) -> Option<(Kind, i64)> {
    match (before, after) {
        (a, b) if a == b => None,
        (0, b) if returning => Some((Kind::Reactivation, b)),
        (0, b) => Some((Kind::New, b)),
        (a, 0) => Some((Kind::Churn, a)),
        (a, b) if b > a => Some((Kind::Expansion, b - a)),
        (a, b) => Some((Kind::Contraction, a - b)),
    }
}

/// The same supporter's movement on one tier (see the module's "Per tier").
pub fn classify_tier(
    tier_before: i64,
    tier_after: i64,
    before: i64,
    after: i64,
    returning: bool,
) -> Option<(Kind, i64)> {
    let d = tier_after - tier_before;
    if d > 0 {
        Some(match before {
            0 if returning => (Kind::Reactivation, d),
            0 => (Kind::New, d),
            _ => (Kind::Expansion, d),
        })
    } else if d < 0 {
        Some(if after == 0 {
            (Kind::Churn, -d)
        } else {
            (Kind::Contraction, -d)
        })
    } else {
        None
    }
}

/// One month's movements (amounts in minor units, counts in supporters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moves {
    pub start: i64,
    pub new: i64,
    pub expansion: i64,
    pub reactivation: i64,
    pub contraction: i64,
    pub churn: i64,
    pub end: i64,
    pub supporters_start: i64,
    pub supporters_end: i64,
    pub new_count: i64,
    pub expansion_count: i64,
    pub reactivation_count: i64,
    pub contraction_count: i64,
    pub churn_count: i64,
}

impl Moves {
    fn record(&mut self, kind: Kind, amount: i64) {
        let (sum, count) = match kind {
            Kind::New => (&mut self.new, &mut self.new_count),
            Kind::Expansion => (&mut self.expansion, &mut self.expansion_count),
            Kind::Reactivation => (&mut self.reactivation, &mut self.reactivation_count),
            Kind::Contraction => (&mut self.contraction, &mut self.contraction_count),
            Kind::Churn => (&mut self.churn, &mut self.churn_count),
        };
        *sum += amount;
        *count += 1;
    }

    pub fn amount(&self, kind: Kind) -> i64 {
        match kind {
            Kind::New => self.new,
            Kind::Expansion => self.expansion,
            Kind::Reactivation => self.reactivation,
            Kind::Contraction => self.contraction,
            Kind::Churn => self.churn,
        }
    }

    pub fn count(&self, kind: Kind) -> i64 {
        match kind {
            Kind::New => self.new_count,
            Kind::Expansion => self.expansion_count,
            Kind::Reactivation => self.reactivation_count,
            Kind::Contraction => self.contraction_count,
            Kind::Churn => self.churn_count,
        }
    }

    /// `start + new + expansion + reactivation − contraction − churn`.
    pub fn expected_end(&self) -> i64 {
        self.start + self.new + self.expansion + self.reactivation - self.contraction - self.churn
    }

    /// (new + expansion + reactivation) ÷ (contraction + churn).
    pub fn quick_ratio(&self) -> Option<Ratio> {
        Ratio::of(
            self.new + self.expansion + self.reactivation,
            self.contraction + self.churn,
        )
    }

    /// Net revenue retention: (start + expansion − contraction − churn)
    /// ÷ start. Only supporters present at the start count.
    pub fn net_retention(&self) -> Option<Ratio> {
        Ratio::of(
            self.start + self.expansion - self.contraction - self.churn,
            self.start,
        )
    }

    /// Gross revenue retention: (start − contraction − churn) ÷ start.
    pub fn gross_retention(&self) -> Option<Ratio> {
        Ratio::of(self.start - self.contraction - self.churn, self.start)
    }
}

/// An exact ratio `numerator / denominator` (denominator > 0), shown in
/// basis points (1/100 of a percent) floored: no floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    pub numerator: i64,
    pub denominator: i64,
}

impl Ratio {
    /// None when the denominator is not positive (nothing to divide by).
    pub fn of(numerator: i64, denominator: i64) -> Option<Ratio> {
        (denominator > 0).then_some(Ratio {
            numerator,
            denominator,
        })
    }

    pub fn basis_points(&self) -> i64 {
        let bp = (i128::from(self.numerator) * 10_000).div_euclid(i128::from(self.denominator));
        i64::try_from(bp).unwrap_or(if bp < 0 { i64::MIN } else { i64::MAX })
    }

    /// "97.25%".
    pub fn percent(&self) -> String {
        let bp = self.basis_points();
        let sign = if bp < 0 { "-" } else { "" };
        let m = bp.unsigned_abs();
        format!("{sign}{}.{:02}%", m / 100, m % 100)
    }

    /// As a multiple: "2.50" (hundredths, floored).
    pub fn multiple(&self) -> String {
        let bp = self.basis_points();
        let sign = if bp < 0 { "-" } else { "" };
        let h = bp.unsigned_abs() / 100;
        format!("{sign}{}.{:02}", h / 100, h % 100)
    }
}

/// A month's movements overall and per tier (tiers with anything running
/// or moving that month).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthMoves {
    pub month: Option<Month>,
    pub total: Moves,
    pub tiers: BTreeMap<i64, Moves>,
}

/// A supporter's change in one month: overall and per tier touched.
struct Change<'a> {
    supporter_id: i64,
    /// Month index in the window.
    month: usize,
    before: i64,
    after: i64,
    returning: bool,
    /// (tier, before, after) for each tier whose MRR changed.
    tiers: &'a [(i64, i64, i64)],
}

/// One supporter's MRR in the window, by boundary.
struct Timeline {
    /// MRR and per-tier MRR at boundary 0.
    initial: i64,
    initial_tiers: Vec<(i64, i64)>,
}

/// What `sweep` reports: a supporter's state at boundary 0 (with the
/// index of the month of their first pledge), then each month in which
/// their MRR (overall or on a tier) changed, in order.
enum Step<'a> {
    First(i64, &'a Timeline),
    Change(&'a Change<'a>),
}

/// Walks every supporter (pledges sorted by supporter).
fn sweep(pledges: &[Pledge], w: Window, mut visit: impl FnMut(Step<'_>)) {
    let n = w.months as i64;
    let mut events: Vec<(i64, i64, i64)> = Vec::new();
    let mut tiers: Vec<(i64, i64)> = Vec::new();
    let mut changed: Vec<(i64, i64, i64)> = Vec::new();
    for mine in pledges.chunk_by(|a, b| a.supporter_id == b.supporter_id) {
        let supporter_id = mine[0].supporter_id;
        let first_start = mine.iter().map(|p| p.started_at).min().expect("a chunk");
        let first_index = w.index_of(first_start);
        events.clear();
        for p in mine {
            let amount = p.monthly();
            if amount == 0 {
                continue;
            }
            let from = w.boundary_after(p.started_at).clamp(0, n + 1);
            let until = p
                .ended_at
                .map_or(n + 1, |e| w.boundary_after(e).clamp(0, n + 1));
            if from >= until {
                continue;
            }
            events.push((from, p.tier_id, amount));
            if until <= n {
                events.push((until, p.tier_id, -amount));
            }
        }
        events.sort_unstable();
        tiers.clear();
        let mut total = 0;
        let mut i = 0;
        // Boundary 0: the state the window starts from.
        while i < events.len() && events[i].0 == 0 {
            let (_, tier, amount) = events[i];
            total += amount;
            add_to(&mut tiers, tier, amount);
            i += 1;
        }
        visit(Step::First(
            first_index,
            &Timeline {
                initial: total,
                initial_tiers: tiers.clone(),
            },
        ));
        while i < events.len() {
            let k = events[i].0;
            let before = total;
            changed.clear();
            while i < events.len() && events[i].0 == k {
                let (_, tier, amount) = events[i];
                total += amount;
                let was = add_to(&mut tiers, tier, amount);
                match changed.iter_mut().find(|c| c.0 == tier) {
                    Some(c) => c.2 += amount,
                    None => changed.push((tier, was, was + amount)),
                }
                i += 1;
            }
            changed.retain(|c| c.1 != c.2);
            if changed.is_empty() {
                continue;
            }
            let month = (k - 1) as usize;
            visit(Step::Change(&Change {
                supporter_id,
                month,
                before,
                after: total,
                returning: first_index < month as i64,
                tiers: &changed,
            }));
        }
    }
}

/// Adds to a tier's amount; returns the amount before.
fn add_to(tiers: &mut Vec<(i64, i64)>, tier: i64, amount: i64) -> i64 {
    match tiers.iter_mut().find(|t| t.0 == tier) {
        Some(t) => {
            let was = t.1;
            t.1 += amount;
            was
        }
        None => {
            tiers.push((tier, amount));
            0
        }
    }
}

fn active(v: i64) -> i64 {
    i64::from(v > 0)
}

/// Movements for each month of the window, overall and per tier, from
/// every pledge sorted by supporter.
pub fn movements(pledges: &[Pledge], w: Window) -> Result<Vec<MonthMoves>, TooLarge> {
    check(pledges)?;
    let n = w.months;
    // Level changes (MRR, supporters) at each boundary; boundary 0 holds
    // the starting level.
    let mut level = vec![(0i64, 0i64); n + 1];
    let mut tier_level: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    let mut out: Vec<MonthMoves> = (0..n)
        .map(|i| MonthMoves {
            month: Some(w.month(i)),
            ..MonthMoves::default()
        })
        .collect();
    sweep(pledges, w, |step| match step {
        Step::First(_, t) => {
            level[0].0 += t.initial;
            level[0].1 += active(t.initial);
            for &(tier, v) in &t.initial_tiers {
                let row = tier_level
                    .entry(tier)
                    .or_insert_with(|| vec![(0, 0); n + 1]);
                row[0].0 += v;
                row[0].1 += active(v);
            }
        }
        Step::Change(c) => {
            let k = c.month + 1;
            level[k].0 += c.after - c.before;
            level[k].1 += active(c.after) - active(c.before);
            let month = &mut out[c.month];
            if let Some((kind, amount)) = classify(c.before, c.after, c.returning) {
                month.total.record(kind, amount);
            }
            for &(tier, tb, ta) in c.tiers {
                let row = tier_level
                    .entry(tier)
                    .or_insert_with(|| vec![(0, 0); n + 1]);
                row[k].0 += ta - tb;
                row[k].1 += active(ta) - active(tb);
                if let Some((kind, amount)) = classify_tier(tb, ta, c.before, c.after, c.returning)
                {
                    month.tiers.entry(tier).or_default().record(kind, amount);
                }
            }
        }
    });
    let (mut mrr, mut people) = level[0];
    for (i, month) in out.iter_mut().enumerate() {
        month.total.start = mrr;
        month.total.supporters_start = people;
        mrr += level[i + 1].0;
        people += level[i + 1].1;
        month.total.end = mrr;
        month.total.supporters_end = people;
    }
    for (tier, row) in &tier_level {
        let (mut mrr, mut people) = row[0];
        for (i, month) in out.iter_mut().enumerate() {
            let (start, start_people) = (mrr, people);
            mrr += row[i + 1].0;
            people += row[i + 1].1;
            if start == 0 && mrr == 0 && !month.tiers.contains_key(tier) {
                continue;
            }
            let m = month.tiers.entry(*tier).or_default();
            m.start = start;
            m.supporters_start = start_people;
            m.end = mrr;
            m.supporters_end = people;
        }
    }
    Ok(out)
}

/// One supporter behind a movement figure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail {
    pub supporter_id: i64,
    pub kind: Kind,
    pub amount: i64,
    /// MRR (overall, or on the tier asked for) at the month's start and end.
    pub before: i64,
    pub after: i64,
}

/// The supporters behind month `month` (index in the window), overall or
/// on one tier, largest amount first: the same classification as
/// `movements`, so their amounts sum to its figures.
pub fn details(
    pledges: &[Pledge],
    w: Window,
    month: usize,
    tier: Option<i64>,
) -> Result<Vec<Detail>, TooLarge> {
    check(pledges)?;
    let mut out = Vec::new();
    sweep(pledges, w, |step| {
        if let Step::Change(c) = step {
            if c.month != month {
                return;
            }
            match tier {
                None => {
                    if let Some((kind, amount)) = classify(c.before, c.after, c.returning) {
                        out.push(Detail {
                            supporter_id: c.supporter_id,
                            kind,
                            amount,
                            before: c.before,
                            after: c.after,
                        });
                    }
                }
                Some(t) => {
                    for &(tier, tb, ta) in c.tiers.iter().filter(|x| x.0 == t) {
                        let _ = tier;
                        if let Some((kind, amount)) =
                            classify_tier(tb, ta, c.before, c.after, c.returning)
                        {
                            out.push(Detail {
                                supporter_id: c.supporter_id,
                                kind,
                                amount,
                                before: tb,
                                after: ta,
                            });
                        }
                    }
                }
            }
        }
    });
    out.sort_by(|a, b| {
        (a.kind, std::cmp::Reverse(a.amount), a.supporter_id).cmp(&(
            b.kind,
            std::cmp::Reverse(b.amount),
            b.supporter_id,
        ))
    });
    Ok(out)
}

/// Retention of the supporters who joined in one month (their first
/// pledge began then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohort {
    pub month: Month,
    pub size: i64,
    /// From the joining month to the window's last: supporters of the
    /// cohort with MRR at the month's end, and that MRR.
    pub active: Vec<i64>,
    pub mrr: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohorts {
    pub cohorts: Vec<Cohort>,
    /// At the end of the window.
    pub supporters_end: i64,
    pub mrr_end: i64,
    /// Average revenue per supporter: MRR ÷ supporters, at the end.
    pub arps: Option<i64>,
    /// Supporters who churned during the window, and the sum over its
    /// months of the supporters active at each month's start.
    pub churned: i64,
    pub supporter_months: i64,
    /// Average tenure in tenths of a month: month ends at which each
    /// supporter (who began before the window's end) had MRR, up to the
    /// window's end, averaged.
    pub tenure_tenths: Option<i64>,
    /// Lifetime value: ARPS ÷ monthly churn rate, where the churn rate is
    /// `churned ÷ supporter_months`.
    pub ltv: Option<i64>,
}

pub const LTV_FORMULA: &str = "LTV = ARPS ÷ monthly churn rate, where ARPS = MRR at the end of the range ÷ supporters with MRR then, and the monthly churn rate = supporters who churned in the range ÷ the sum over its months of the supporters with MRR at each month's start";

/// Cohorts by joining month within the window, ARPS, tenure and LTV.
pub fn cohorts(pledges: &[Pledge], w: Window) -> Result<Cohorts, TooLarge> {
    check(pledges)?;
    let n = w.months;
    // Per cohort: (MRR change, active change) per boundary.
    let mut diff: Vec<Vec<(i64, i64)>> = vec![vec![(0, 0); n + 1]; n];
    let mut size = vec![0i64; n];
    let mut cohort_of: i64 = -1;
    let mut starts = vec![0i64; n + 1];
    let mut churned = 0;
    sweep(pledges, w, |step| match step {
        Step::First(first_index, t) => {
            cohort_of = first_index;
            if (0..n as i64).contains(&first_index) {
                size[first_index as usize] += 1;
            }
            starts[0] += active(t.initial);
        }
        Step::Change(c) => {
            let k = c.month + 1;
            starts[k] += active(c.after) - active(c.before);
            if c.before > 0 && c.after == 0 {
                churned += 1;
            }
            if (0..n as i64).contains(&cohort_of) {
                let row = &mut diff[cohort_of as usize];
                row[k].0 += c.after - c.before;
                row[k].1 += active(c.after) - active(c.before);
            }
        }
    });
    let mut out = Vec::new();
    for (c, row) in diff.iter().enumerate() {
        if size[c] == 0 {
            continue;
        }
        let (mut mrr, mut people) = (0, 0);
        let mut cohort = Cohort {
            month: w.month(c),
            size: size[c],
            active: Vec::new(),
            mrr: Vec::new(),
        };
        for (k, &(dm, dp)) in row.iter().enumerate().skip(1) {
            mrr += dm;
            people += dp;
            if k > c {
                cohort.mrr.push(mrr);
                cohort.active.push(people);
            }
        }
        out.push(cohort);
    }
    // Supporters at each boundary; month m starts at boundary m.
    let mut level = 0;
    let mut supporter_months = 0;
    let mut supporters_end = 0;
    for (k, d) in starts.iter().enumerate() {
        level += d;
        if k < n {
            supporter_months += level;
        } else {
            supporters_end = level;
        }
    }
    let mrr_end: i64 = pledges
        .iter()
        .filter(|p| p.running_at(w.boundary(n)))
        .map(Pledge::monthly)
        .sum();
    let arps = (supporters_end > 0).then(|| mrr_end / supporters_end);
    let ltv = match (arps, churned) {
        (Some(arps), c) if c > 0 => Some(
            i64::try_from(i128::from(arps) * i128::from(supporter_months) / i128::from(c))
                .map_err(|_| TooLarge)?,
        ),
        _ => None,
    };
    Ok(Cohorts {
        cohorts: out,
        supporters_end,
        mrr_end,
        arps,
        churned,
        supporter_months,
        tenure_tenths: tenure_tenths(pledges, w),
        ltv,
    })
}

/// See `Cohorts::tenure_tenths`.
fn tenure_tenths(pledges: &[Pledge], w: Window) -> Option<i64> {
    let end = w.months as i64;
    let mut spans: Vec<(i64, i64)> = Vec::new();
    let (mut months, mut people) = (0i64, 0i64);
    for mine in pledges.chunk_by(|a, b| a.supporter_id == b.supporter_id) {
        if mine
            .iter()
            .all(|p| w.boundary_after(p.started_at) > end + 1)
        {
            continue;
        }
        people += 1;
        spans.clear();
        for p in mine.iter().filter(|p| p.monthly() > 0) {
            let from = w.boundary_after(p.started_at);
            let until = p
                .ended_at
                .map_or(end + 1, |e| w.boundary_after(e))
                .min(end + 1);
            if from < until {
                spans.push((from, until));
            }
        }
        spans.sort_unstable();
        let mut reach = i64::MIN;
        for &(from, until) in &spans {
            let from = from.max(reach);
            if until > from {
                months += until - from;
                reach = until;
            }
        }
    }
    (people > 0).then(|| months * 10 / people)
}

/// How much of the MRR depends on the largest supporters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concentration {
    pub mrr: i64,
    pub supporters: i64,
    /// The largest supporter and their MRR.
    pub largest: Option<(i64, i64)>,
    pub largest_share: Option<Ratio>,
    pub top10: i64,
    pub top10_share: Option<Ratio>,
    /// Herfindahl–Hirschman index on the 0–10,000 scale: the sum of the
    /// squared shares in percent (10,000 = one supporter holds it all).
    pub herfindahl: i64,
    /// The largest company sponsor (sponsor tiers) and their MRR.
    pub largest_sponsor: Option<(i64, i64)>,
    /// MRR if the largest sponsor left.
    pub without_largest_sponsor: i64,
    /// MRR of past-due pledges: at risk until their payment is recovered.
    pub past_due: i64,
    pub past_due_supporters: i64,
}

/// Concentration of the MRR running at `at`.
pub fn concentration(pledges: &[Pledge], at: DateTime<Utc>) -> Result<Concentration, TooLarge> {
    check(pledges)?;
    let mut per: Vec<(i64, i64, i64)> = Vec::new(); // (mrr, sponsor mrr, id)
    let (mut past_due, mut past_due_supporters) = (0, 0);
    for mine in pledges.chunk_by(|a, b| a.supporter_id == b.supporter_id) {
        let running = || mine.iter().filter(|p| p.running_at(at));
        let mrr: i64 = running().map(Pledge::monthly).sum();
        let sponsor: i64 = running().filter(|p| p.sponsor).map(Pledge::monthly).sum();
        let due: i64 = running().filter(|p| p.past_due).map(Pledge::monthly).sum();
        if due > 0 {
            past_due += due;
            past_due_supporters += 1;
        }
        if mrr > 0 {
            per.push((mrr, sponsor, mine[0].supporter_id));
        }
    }
    let total: i64 = per.iter().map(|p| p.0).sum();
    per.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.2.cmp(&b.2)));
    let largest = per.first().map(|p| (p.2, p.0));
    let top10: i64 = per.iter().take(10).map(|p| p.0).sum();
    let herfindahl = if total > 0 {
        let squares: i128 = per.iter().map(|p| i128::from(p.0) * i128::from(p.0)).sum();
        i64::try_from(squares * 10_000 / (i128::from(total) * i128::from(total)))
            .map_err(|_| TooLarge)?
    } else {
        0
    };
    let largest_sponsor = per
        .iter()
        .filter(|p| p.1 > 0)
        .max_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)))
        .map(|p| (p.2, p.0));
    Ok(Concentration {
        mrr: total,
        supporters: per.len() as i64,
        largest,
        largest_share: largest.and_then(|l| Ratio::of(l.1, total)),
        top10,
        top10_share: Ratio::of(top10, total),
        herfindahl,
        largest_sponsor,
        without_largest_sponsor: total - largest_sponsor.map_or(0, |s| s.1),
        past_due,
        past_due_supporters,
    })
}

/// Committed MRR at the end of one future month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastMonth {
    pub month: Month,
    /// MRR of pledges still running at the month's end.
    pub committed: i64,
    /// MRR that stops during the month: pledges set to cancel whose period
    /// ends, and sponsor terms that end without renewal.
    pub ending: i64,
    pub ending_pledges: i64,
    /// Yearly pledges due to renew in the month (the whole year's amount,
    /// cash expected), and how many.
    pub yearly_renewals: i64,
    pub yearly_renewal_count: i64,
}

/// The forecast rules, as the console states them.
pub const FORECAST_RULES: &str = "A pledge running now counts until it is known to stop: a pledge set to cancel stops at the end of its paid period; a sponsorship paid on terms (no automatic renewal) stops after its paid-through day; a pledge with an end date stops then. Everything else is assumed to renew. Yearly pledges count as a twelfth each month and renew on their anniversary (or Stripe's period end).";

/// When a pledge running at `now` is known to stop, if it is.
pub fn known_end(p: &Pledge, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut end = p.ended_at;
    let mut earlier = |t: DateTime<Utc>| {
        end = Some(end.map_or(t, |e| e.min(t)));
    };
    if p.cancel_at_period_end {
        earlier(p.current_period_end.unwrap_or(now).max(now));
    }
    if let Some(day) = p.term_end {
        let after = day
            .succ_opt()
            .unwrap_or(day)
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc();
        earlier(after.max(now));
    }
    end
}

/// The next renewal of a yearly pledge after `now`: Stripe's period end,
/// else the anniversary of its start.
fn next_yearly_renewal(p: &Pledge, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(end) = p.current_period_end.filter(|e| *e > now) {
        return Some(end);
    }
    let start = p.started_at;
    let mut year = now.year();
    loop {
        let t = start
            .with_year(year)
            .or_else(|| start.with_day(28).and_then(|s| s.with_year(year)))?;
        if t > now {
            return Some(t);
        }
        year += 1;
    }
}

/// Committed MRR at the end of each of the `months` months after `now`'s
/// month, from the pledges running at `now`.
pub fn forecast(
    pledges: &[Pledge],
    now: DateTime<Utc>,
    months: usize,
) -> Result<Vec<ForecastMonth>, TooLarge> {
    check(pledges)?;
    let this = Month::of(now);
    let w = Window {
        first: this.next(),
        months,
    };
    let mut out: Vec<ForecastMonth> = (0..months)
        .map(|i| ForecastMonth {
            month: w.month(i),
            committed: 0,
            ending: 0,
            ending_pledges: 0,
            yearly_renewals: 0,
            yearly_renewal_count: 0,
        })
        .collect();
    // Month `i` of the window ends at boundary i + 1.
    let horizon = w.boundary(months);
    for p in pledges.iter().filter(|p| p.running_at(now)) {
        let amount = p.monthly();
        let end = known_end(p, now);
        for (i, m) in out.iter_mut().enumerate() {
            let (start, finish) = (w.boundary(i), w.boundary(i + 1));
            let running_at_end = end.is_none_or(|e| e >= finish);
            if running_at_end {
                m.committed += amount;
            }
            // The first forecast month takes what stops before it, too, so
            // `committed` falls from the MRR now by exactly `ending`.
            let running_at_start = i == 0 || end.is_none_or(|e| e >= start);
            if running_at_start && !running_at_end {
                m.ending += amount;
                m.ending_pledges += 1;
            }
        }
        // A term without automatic renewal, or a pledge set to cancel,
        // never renews by itself.
        if p.interval == Interval::Year
            && p.term_end.is_none()
            && !p.cancel_at_period_end
            && let Some(mut renewal) = next_yearly_renewal(p, now)
        {
            while renewal < horizon {
                if end.is_some_and(|e| e <= renewal) {
                    break;
                }
                let i = w.index_of(renewal);
                if (0..months as i64).contains(&i) {
                    let m = &mut out[i as usize];
                    m.yearly_renewals += p.amount_minor;
                    m.yearly_renewal_count += 1;
                }
                match renewal.with_year(renewal.year() + 1) {
                    Some(next) => renewal = next,
                    None => break,
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap()
    }

    fn pledge(
        s: i64,
        tier: i64,
        amount: i64,
        start: DateTime<Utc>,
        end: Option<DateTime<Utc>>,
    ) -> Pledge {
        Pledge {
            supporter_id: s,
            tier_id: tier,
            sponsor: false,
            interval: Interval::Month,
            amount_minor: amount,
            started_at: start,
            ended_at: end,
            past_due: false,
            cancel_at_period_end: false,
            current_period_end: None,
            term_end: None,
        }
    }

    fn jan_to_jun() -> Window {
        Window::new(
            Month {
                year: 2026,
                month: 1,
            },
            Month {
                year: 2026,
                month: 6,
            },
        )
    }

    #[test]
    fn classifies_the_five_movements() {
        assert_eq!(classify(0, 500, false), Some((Kind::New, 500)));
        assert_eq!(classify(0, 500, true), Some((Kind::Reactivation, 500)));
        assert_eq!(classify(500, 800, true), Some((Kind::Expansion, 300)));
        assert_eq!(classify(800, 500, true), Some((Kind::Contraction, 300)));
        assert_eq!(classify(800, 0, true), Some((Kind::Churn, 800)));
        assert_eq!(classify(800, 800, true), None);
        // Leaving a tier while another pledge runs: contraction there.
        assert_eq!(
            classify_tier(1000, 0, 1000, 2500, true),
            Some((Kind::Contraction, 1000))
        );
        assert_eq!(
            classify_tier(0, 2500, 1000, 2500, true),
            Some((Kind::Expansion, 2500))
        );
        assert_eq!(
            classify_tier(1000, 0, 1000, 0, true),
            Some((Kind::Churn, 1000))
        );
    }

    #[test]
    fn a_scenario_moves_as_chartmogul_says() {
        let w = jan_to_jun();
        let pledges = vec![
            // 1 upgrades from 10 to 25 in March.
            pledge(1, 1, 1000, at(2025, 12, 3), Some(at(2026, 3, 10))),
            pledge(1, 2, 2500, at(2026, 3, 10), None),
            // 2 downgrades from 25 to 10 in April.
            pledge(2, 2, 2500, at(2026, 1, 20), Some(at(2026, 4, 2))),
            pledge(2, 1, 1000, at(2026, 4, 2), None),
            // 3 has two pledges; cancelling one is contraction, the other churn.
            pledge(3, 1, 1000, at(2025, 11, 1), Some(at(2026, 2, 14))),
            pledge(3, 1, 1000, at(2025, 11, 1), Some(at(2026, 5, 1))),
            // 4 leaves in February and returns in May.
            pledge(4, 1, 1000, at(2025, 10, 1), Some(at(2026, 2, 1))),
            pledge(4, 2, 2500, at(2026, 5, 5), None),
        ];
        let m = movements(&pledges, w).unwrap();
        let total = |i: usize| m[i].total;
        assert_eq!(total(0).start, 1000 + 2000 + 1000);
        assert_eq!((total(0).new, total(0).new_count), (2500, 1));
        assert_eq!((total(1).churn, total(1).contraction), (1000, 1000));
        assert_eq!(total(2).expansion, 1500);
        assert_eq!(total(3).contraction, 1500);
        assert_eq!(total(4).churn, 1000);
        assert_eq!(
            (total(4).reactivation, total(4).reactivation_count),
            (2500, 1)
        );
        // The tier view of the March upgrade.
        assert_eq!(m[2].tiers[&1].contraction, 1000);
        assert_eq!(m[2].tiers[&2].expansion, 2500);
        for month in &m {
            assert_eq!(month.total.expected_end(), month.total.end);
            for t in month.tiers.values() {
                assert_eq!(t.expected_end(), t.end);
            }
        }
        let d = details(&pledges, w, 4, None).unwrap();
        assert_eq!(
            d.iter()
                .map(|d| (d.supporter_id, d.kind))
                .collect::<Vec<_>>(),
            [(4, Kind::Reactivation), (3, Kind::Churn)]
        );
        assert_eq!(total(2).quick_ratio(), None);
        // (6,500 − 1,000 − 1,000) ÷ 6,500.
        assert_eq!(total(1).gross_retention().unwrap().percent(), "69.23%");
    }

    #[test]
    fn ratios_are_exact_and_never_floats() {
        let r = Ratio::of(2, 3).unwrap();
        assert_eq!(r.basis_points(), 6666);
        assert_eq!(r.percent(), "66.66%");
        assert_eq!(Ratio::of(5, 2).unwrap().multiple(), "2.50");
        assert_eq!(Ratio::of(1, 0), None);
    }

    #[test]
    fn concentration_names_the_largest_and_the_risk() {
        let now = at(2026, 6, 15);
        let mut big = pledge(9, 3, 50_000, at(2026, 1, 1), None);
        big.sponsor = true;
        let mut late = pledge(2, 1, 1000, at(2026, 1, 1), None);
        late.past_due = true;
        let c = concentration(&[pledge(1, 1, 1000, at(2026, 1, 1), None), late, big], now).unwrap();
        assert_eq!(c.mrr, 52_000);
        assert_eq!(c.largest, Some((9, 50_000)));
        assert_eq!(c.without_largest_sponsor, 2000);
        assert_eq!(c.past_due, 1000);
        // (50000² + 1000² + 1000²) × 10000 / 52000²
        assert_eq!(c.herfindahl, 9252);
    }

    #[test]
    fn the_forecast_drops_what_is_known_to_stop() {
        let now = at(2026, 6, 15);
        let mut leaving = pledge(1, 1, 1000, at(2026, 1, 1), None);
        leaving.cancel_at_period_end = true;
        leaving.current_period_end = Some(at(2026, 8, 1));
        let mut term = pledge(2, 2, 12_000, at(2025, 9, 1), None);
        term.interval = Interval::Year;
        term.sponsor = true;
        term.term_end = NaiveDate::from_ymd_opt(2026, 10, 31);
        let stays = pledge(3, 1, 500, at(2026, 1, 1), None);
        let f = forecast(&[leaving, term, stays], now, 6).unwrap();
        let committed: Vec<i64> = f.iter().map(|m| m.committed).collect();
        assert_eq!(committed, [2500, 1500, 1500, 1500, 500, 500]);
        assert_eq!(f[1].ending, 1000);
        assert_eq!(f[4].ending, 1000);
        // A term paid on invoice does not renew by itself.
        assert!(f.iter().all(|m| m.yearly_renewals == 0));
        let mut yearly = pledge(4, 1, 6000, at(2025, 9, 1), None);
        yearly.interval = Interval::Year;
        let f = forecast(&[yearly], now, 6).unwrap();
        assert_eq!((f[2].yearly_renewals, f[2].yearly_renewal_count), (6000, 1));
        assert_eq!(f.iter().map(|m| m.yearly_renewals).sum::<i64>(), 6000);
    }

    // Random pledge histories: the one-pass computation against a
    // brute-force recount of every supporter at every month boundary.

    fn history() -> impl Strategy<Value = Vec<Pledge>> {
        let one = (
            1i64..12,
            1i64..4,
            1i64..5000,
            any::<bool>(),
            -6i64..20,
            1u32..29,
            proptest::option::of((0i64..14, 1u32..29)),
        );
        proptest::collection::vec(one, 0..40).prop_map(|raw| {
            let mut out: Vec<Pledge> = raw
                .into_iter()
                .map(|(s, tier, amount, yearly, start, day, end)| {
                    let month = |offset: i64| {
                        Month::at(
                            Month::index(Month {
                                year: 2026,
                                month: 1,
                            }) + offset,
                        )
                    };
                    let on = |m: Month, d: u32| at(m.year, m.month, d);
                    let started = on(month(start), day);
                    let ended = end
                        .map(|(len, d)| on(month(start + len), d))
                        .filter(|e| *e >= started);
                    let mut p = pledge(s, tier, amount, started, ended);
                    if yearly {
                        p.interval = Interval::Year;
                        p.amount_minor *= 7;
                    }
                    p
                })
                .collect();
            out.sort_by_key(|p| p.supporter_id);
            out
        })
    }

    fn brute(pledges: &[Pledge], w: Window) -> Vec<MonthMoves> {
        let mrr = |s: i64, tier: Option<i64>, t: DateTime<Utc>| -> i64 {
            pledges
                .iter()
                .filter(|p| {
                    p.supporter_id == s && tier.is_none_or(|x| x == p.tier_id) && p.running_at(t)
                })
                .map(Pledge::monthly)
                .sum()
        };
        let mut supporters: Vec<i64> = pledges.iter().map(|p| p.supporter_id).collect();
        supporters.dedup();
        let mut tiers: Vec<i64> = pledges.iter().map(|p| p.tier_id).collect();
        tiers.sort_unstable();
        tiers.dedup();
        (0..w.months)
            .map(|m| {
                let (b0, b1) = (w.boundary(m), w.boundary(m + 1));
                let mut out = MonthMoves {
                    month: Some(w.month(m)),
                    ..MonthMoves::default()
                };
                for &s in &supporters {
                    let (a, b) = (mrr(s, None, b0), mrr(s, None, b1));
                    let returning = pledges
                        .iter()
                        .any(|p| p.supporter_id == s && p.started_at < b0);
                    out.total.start += a;
                    out.total.end += b;
                    out.total.supporters_start += active(a);
                    out.total.supporters_end += active(b);
                    if let Some((k, x)) = classify(a, b, returning) {
                        out.total.record(k, x);
                    }
                    for &t in &tiers {
                        let (ta, tb) = (mrr(s, Some(t), b0), mrr(s, Some(t), b1));
                        if ta == 0 && tb == 0 {
                            continue;
                        }
                        let e = out.tiers.entry(t).or_default();
                        e.start += ta;
                        e.end += tb;
                        e.supporters_start += active(ta);
                        e.supporters_end += active(tb);
                        if let Some((k, x)) = classify_tier(ta, tb, a, b, returning) {
                            e.record(k, x);
                        }
                    }
                }
                out
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn movements_add_up_every_month_and_every_tier(pledges in history()) {
            let w = Window::new(Month { year: 2026, month: 1 }, Month { year: 2026, month: 12 });
            let fast = movements(&pledges, w).unwrap();
            for (i, m) in fast.iter().enumerate() {
                prop_assert_eq!(m.total.expected_end(), m.total.end, "month {}", i);
                for (tier, t) in &m.tiers {
                    prop_assert_eq!(t.expected_end(), t.end, "month {} tier {}", i, tier);
                }
                if i > 0 {
                    prop_assert_eq!(m.total.start, fast[i - 1].total.end);
                }
                // Tiers sum to the total; new, reactivation and churn exactly.
                let sum = |f: fn(&Moves) -> i64| m.tiers.values().map(f).sum::<i64>();
                prop_assert_eq!(sum(|t| t.end), m.total.end);
                prop_assert_eq!(sum(|t| t.new), m.total.new);
                prop_assert_eq!(sum(|t| t.reactivation), m.total.reactivation);
                prop_assert_eq!(sum(|t| t.churn), m.total.churn);
                prop_assert_eq!(
                    sum(|t| t.expansion) - sum(|t| t.contraction),
                    m.total.expansion - m.total.contraction
                );
                // The drill-down lists exactly the supporters behind each figure.
                let d = details(&pledges, w, i, None).unwrap();
                for kind in Kind::ALL {
                    let of = d.iter().filter(|x| x.kind == kind);
                    prop_assert_eq!(of.clone().map(|x| x.amount).sum::<i64>(), m.total.amount(kind));
                    prop_assert_eq!(of.count() as i64, m.total.count(kind));
                }
                for (tier, t) in &m.tiers {
                    let d = details(&pledges, w, i, Some(*tier)).unwrap();
                    for kind in Kind::ALL {
                        let sum: i64 = d.iter().filter(|x| x.kind == kind).map(|x| x.amount).sum();
                        prop_assert_eq!(sum, t.amount(kind));
                    }
                }
            }
            prop_assert_eq!(fast, brute(&pledges, w));
        }

        #[test]
        fn cohorts_count_what_a_recount_finds(pledges in history()) {
            let w = Window::new(Month { year: 2026, month: 1 }, Month { year: 2026, month: 12 });
            let c = cohorts(&pledges, w).unwrap();
            for cohort in &c.cohorts {
                let c0 = (Month::index(cohort.month) - Month::index(w.first)) as usize;
                let members: Vec<i64> = pledges
                    .chunk_by(|a, b| a.supporter_id == b.supporter_id)
                    .filter(|mine| Month::of(mine.iter().map(|p| p.started_at).min().unwrap()) == cohort.month)
                    .map(|mine| mine[0].supporter_id)
                    .collect();
                prop_assert_eq!(cohort.size, members.len() as i64);
                for (j, (&people, &mrr)) in cohort.active.iter().zip(&cohort.mrr).enumerate() {
                    let t = w.boundary(c0 + j + 1);
                    let mrr_of = |s: i64| pledges.iter().filter(|p| p.supporter_id == s && p.running_at(t)).map(Pledge::monthly).sum::<i64>();
                    prop_assert_eq!(mrr, members.iter().map(|&s| mrr_of(s)).sum::<i64>());
                    prop_assert_eq!(people, members.iter().filter(|&&s| mrr_of(s) > 0).count() as i64);
                }
            }
            let moves = movements(&pledges, w).unwrap();
            prop_assert_eq!(c.churned, moves.iter().map(|m| m.total.churn_count).sum::<i64>());
            prop_assert_eq!(c.mrr_end, moves.last().unwrap().total.end);
            prop_assert_eq!(c.supporters_end, moves.last().unwrap().total.supporters_end);
        }
    }
}
