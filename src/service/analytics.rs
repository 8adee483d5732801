//! Revenue analytics for admins: MRR movements with their drill-down,
//! cohorts, concentration and risk, and a forecast. Each answer is one
//! read of every pledge and one pass in memory (`domain::analytics`); the
//! JSON API, the CSV and the console all call these.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    domain::{
        analytics::{self, FORECAST_RULES, Kind, LTV_FORMULA, Moves, Ratio, TooLarge},
        money::{Currency, Money, MoneyView},
        month::{Month, Window},
    },
    error::{Error, Result},
    store::{self, Db},
};

/// Months forecast ahead.
pub const FORECAST_MONTHS: usize = 6;

impl From<TooLarge> for Error {
    fn from(e: TooLarge) -> Self {
        Error::internal(e.to_string())
    }
}

/// An exact ratio in basis points (1/100 of a percent), and for people.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct RatioView {
    pub basis_points: i64,
    /// "97.25%", or for the quick ratio a multiple, "2.50".
    pub display: String,
}

fn percent(r: Option<Ratio>) -> Option<RatioView> {
    r.map(|r| RatioView {
        basis_points: r.basis_points(),
        display: r.percent(),
    })
}

fn multiple(r: Option<Ratio>) -> Option<RatioView> {
    r.map(|r| RatioView {
        basis_points: r.basis_points(),
        display: r.multiple(),
    })
}

/// An amount of MRR moved, and by how many supporters.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Movement {
    pub amount: MoneyView,
    pub supporters: i64,
}

/// One month's MRR movements, overall (`tier_id` null) or on one tier:
/// `start + new + expansion + reactivation − contraction − churn = end`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MovementRow {
    pub tier_id: Option<i64>,
    pub tier_name: Option<String>,
    pub start: MoneyView,
    pub new: Movement,
    pub expansion: Movement,
    pub reactivation: Movement,
    pub contraction: Movement,
    pub churn: Movement,
    pub end: MoneyView,
    pub supporters_start: i64,
    pub supporters_end: i64,
    /// (new + expansion + reactivation) ÷ (contraction + churn); null when
    /// nothing was lost.
    pub quick_ratio: Option<RatioView>,
    /// (start + expansion − contraction − churn) ÷ start; null without MRR
    /// at the start.
    pub net_revenue_retention: Option<RatioView>,
    /// (start − contraction − churn) ÷ start.
    pub gross_revenue_retention: Option<RatioView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MovementMonth {
    pub month: String,
    pub total: MovementRow,
    pub tiers: Vec<MovementRow>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MovementsReport {
    pub currency: String,
    pub from: String,
    pub to: String,
    /// How MRR and each movement are defined.
    pub rules: String,
    pub months: Vec<MovementMonth>,
}

pub const MOVEMENT_RULES: &str = "MRR is each supporter's recurring pledges normalised to a month (a yearly pledge counts as a twelfth), in the campaign currency, as they run at a month's start and end. New: from nothing, first pledge ever. Reactivation: from nothing, a former supporter. Expansion and contraction: up or down while still supporting. Churn: down to nothing (no other pledge running). Per tier, a supporter's whole change on the tier counts as new, reactivation or churn only when it is so overall, else as expansion or contraction: a move between tiers is contraction on the old tier and expansion on the new one.";

struct Ctx {
    currency: Currency,
    tiers: HashMap<i64, String>,
}

impl Ctx {
    async fn load(db: &Db) -> Result<Ctx> {
        let currency = store::campaign::get(db).await?.currency;
        let tiers = store::tiers::list(db, true)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        Ok(Ctx { currency, tiers })
    }

    fn money(&self, minor: i64) -> MoneyView {
        Money::new(minor, self.currency).view()
    }

    fn row(&self, tier: Option<i64>, m: &Moves) -> MovementRow {
        let mv = |k: Kind| Movement {
            amount: self.money(m.amount(k)),
            supporters: m.count(k),
        };
        MovementRow {
            tier_id: tier,
            tier_name: tier.map(|t| self.tiers.get(&t).cloned().unwrap_or_default()),
            start: self.money(m.start),
            new: mv(Kind::New),
            expansion: mv(Kind::Expansion),
            reactivation: mv(Kind::Reactivation),
            contraction: mv(Kind::Contraction),
            churn: mv(Kind::Churn),
            end: self.money(m.end),
            supporters_start: m.supporters_start,
            supporters_end: m.supporters_end,
            quick_ratio: multiple(m.quick_ratio()),
            net_revenue_retention: percent(m.net_retention()),
            gross_revenue_retention: percent(m.gross_retention()),
        }
    }
}

/// Movements for each month from `from` to `to`.
pub async fn movements(db: &Db, from: Month, to: Month) -> Result<MovementsReport> {
    let months = Month::range(from, to)?;
    let ctx = Ctx::load(db).await?;
    let pledges = store::analytics::pledges(db, ctx.currency).await?;
    let moves = analytics::movements(&pledges, Window::new(from, to))?;
    Ok(MovementsReport {
        currency: ctx.currency.code().to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        rules: MOVEMENT_RULES.to_owned(),
        months: months
            .iter()
            .zip(&moves)
            .map(|(month, m)| MovementMonth {
                month: month.to_string(),
                total: ctx.row(None, &m.total),
                tiers: m.tiers.iter().map(|(t, x)| ctx.row(Some(*t), x)).collect(),
            })
            .collect(),
    })
}

/// One supporter behind a movement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DetailView {
    pub supporter_id: i64,
    pub display_name: String,
    /// new, expansion, reactivation, contraction or churn.
    pub kind: String,
    pub amount: MoneyView,
    /// MRR (overall, or on the tier) at the month's start and end.
    pub before: MoneyView,
    pub after: MoneyView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MovementDetails {
    pub currency: String,
    pub month: String,
    pub tier_id: Option<i64>,
    pub kind: Option<String>,
    /// Every supporter matching, and their amounts' sum: the movement
    /// figure itself.
    pub supporters: i64,
    pub total: MoneyView,
    /// The first `limit`, largest amount first.
    pub items: Vec<DetailView>,
}

/// The supporters behind `month`'s movements, overall or on `tier`, of
/// one kind or all.
pub async fn movement_details(
    db: &Db,
    month: Month,
    tier: Option<i64>,
    kind: Option<Kind>,
    limit: usize,
) -> Result<MovementDetails> {
    let ctx = Ctx::load(db).await?;
    let pledges = store::analytics::pledges(db, ctx.currency).await?;
    let mut all = analytics::details(&pledges, Window::new(month, month), 0, tier)?;
    all.retain(|d| kind.is_none_or(|k| d.kind == k));
    let total: i64 = all.iter().map(|d| d.amount).sum();
    let shown = &all[..all.len().min(limit)];
    let ids: Vec<i64> = shown.iter().map(|d| d.supporter_id).collect();
    let names = store::analytics::names(db, &ids).await?;
    Ok(MovementDetails {
        currency: ctx.currency.code().to_owned(),
        month: month.to_string(),
        tier_id: tier,
        kind: kind.map(|k| k.as_str().to_owned()),
        supporters: all.len() as i64,
        total: ctx.money(total),
        items: shown
            .iter()
            .map(|d| DetailView {
                supporter_id: d.supporter_id,
                display_name: names.get(&d.supporter_id).cloned().unwrap_or_default(),
                kind: d.kind.as_str().to_owned(),
                amount: ctx.money(d.amount),
                before: ctx.money(d.before),
                after: ctx.money(d.after),
            })
            .collect(),
    })
}

/// A cohort's figures at the end of one month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CohortCell {
    pub month: String,
    /// Months since joining (0 = the joining month).
    pub age: usize,
    pub supporters: i64,
    /// Supporters with MRR ÷ the cohort's size.
    pub supporter_retention: Option<RatioView>,
    pub mrr: MoneyView,
    /// MRR ÷ the cohort's MRR at the end of its joining month.
    pub mrr_retention: Option<RatioView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CohortView {
    /// The month its supporters' first pledge began.
    pub month: String,
    pub size: i64,
    pub cells: Vec<CohortCell>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CohortsReport {
    pub currency: String,
    pub from: String,
    pub to: String,
    pub cohorts: Vec<CohortView>,
    /// Supporters with MRR, and the MRR, at the end of `to`.
    pub supporters: i64,
    pub mrr: MoneyView,
    /// Average revenue per supporter (MRR ÷ supporters), at the end.
    pub arps: Option<MoneyView>,
    /// Month ends at which each supporter had MRR, up to the end of `to`,
    /// averaged over everyone whose first pledge began by then ("4.5").
    pub average_tenure_months: Option<String>,
    /// Supporters who churned in the range; supporter-months at risk (the
    /// sum over the months of the supporters active at each start).
    pub churned_supporters: i64,
    pub supporter_months: i64,
    /// churned ÷ supporter-months.
    pub monthly_churn_rate: Option<RatioView>,
    pub lifetime_value: Option<MoneyView>,
    pub lifetime_value_formula: String,
}

pub async fn cohorts(db: &Db, from: Month, to: Month) -> Result<CohortsReport> {
    Month::range(from, to)?;
    let ctx = Ctx::load(db).await?;
    let pledges = store::analytics::pledges(db, ctx.currency).await?;
    let w = Window::new(from, to);
    let c = analytics::cohorts(&pledges, w)?;
    Ok(CohortsReport {
        currency: ctx.currency.code().to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        cohorts: c
            .cohorts
            .iter()
            .map(|cohort| {
                let base = cohort.mrr.first().copied().unwrap_or(0);
                let mut month = cohort.month;
                CohortView {
                    month: cohort.month.to_string(),
                    size: cohort.size,
                    cells: cohort
                        .active
                        .iter()
                        .zip(&cohort.mrr)
                        .enumerate()
                        .map(|(age, (&people, &mrr))| {
                            let cell = CohortCell {
                                month: month.to_string(),
                                age,
                                supporters: people,
                                supporter_retention: percent(Ratio::of(people, cohort.size)),
                                mrr: ctx.money(mrr),
                                mrr_retention: percent(Ratio::of(mrr, base)),
                            };
                            month = month.next();
                            cell
                        })
                        .collect(),
                }
            })
            .collect(),
        supporters: c.supporters_end,
        mrr: ctx.money(c.mrr_end),
        arps: c.arps.map(|a| ctx.money(a)),
        average_tenure_months: c.tenure_tenths.map(|t| format!("{}.{}", t / 10, t % 10)),
        churned_supporters: c.churned,
        supporter_months: c.supporter_months,
        monthly_churn_rate: percent(Ratio::of(c.churned, c.supporter_months)),
        lifetime_value: c.ltv.map(|l| ctx.money(l)),
        lifetime_value_formula: LTV_FORMULA.to_owned(),
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SupporterShare {
    pub supporter_id: i64,
    pub display_name: String,
    pub mrr: MoneyView,
    pub share: Option<RatioView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecoveryView {
    /// Failed payments first failing from `from` to `to`.
    pub failed: i64,
    pub failed_amount: MoneyView,
    /// Of those, recovered since.
    pub recovered: i64,
    pub recovered_amount: MoneyView,
    /// recovered ÷ failed.
    pub recovery_rate: Option<RatioView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConcentrationReport {
    pub currency: String,
    /// The MRR is as it runs at this instant.
    pub at: DateTime<Utc>,
    pub mrr: MoneyView,
    pub supporters: i64,
    pub largest: Option<SupporterShare>,
    /// The ten largest supporters' MRR and share.
    pub top10: MoneyView,
    pub top10_share: Option<RatioView>,
    /// Herfindahl–Hirschman index, 0 to 10,000 (squared shares in percent).
    pub herfindahl: i64,
    /// The largest company sponsor (sponsor tiers).
    pub largest_sponsor: Option<SupporterShare>,
    /// "If the largest sponsor leaves, MRR falls to …".
    pub mrr_without_largest_sponsor: MoneyView,
    /// MRR of past-due pledges (renewal failing, being retried).
    pub at_risk_past_due: MoneyView,
    pub past_due_supporters: i64,
    /// Failed payments in the range, and their recovery.
    pub from: String,
    pub to: String,
    pub failed_payments: RecoveryView,
}

pub async fn concentration(
    db: &Db,
    now: DateTime<Utc>,
    from: Month,
    to: Month,
) -> Result<ConcentrationReport> {
    Month::range(from, to)?;
    let ctx = Ctx::load(db).await?;
    let pledges = store::analytics::pledges(db, ctx.currency).await?;
    let c = analytics::concentration(&pledges, now)?;
    let ids: Vec<i64> = c
        .largest
        .iter()
        .chain(&c.largest_sponsor)
        .map(|x| x.0)
        .collect();
    let names = store::analytics::names(db, &ids).await?;
    let share = |x: Option<(i64, i64)>| {
        x.map(|(id, mrr)| SupporterShare {
            supporter_id: id,
            display_name: names.get(&id).cloned().unwrap_or_default(),
            mrr: ctx.money(mrr),
            share: percent(Ratio::of(mrr, c.mrr)),
        })
    };
    let r = store::analytics::recovery(db, ctx.currency, from.start(), to.end()).await?;
    Ok(ConcentrationReport {
        currency: ctx.currency.code().to_owned(),
        at: now,
        mrr: ctx.money(c.mrr),
        supporters: c.supporters,
        largest: share(c.largest),
        top10: ctx.money(c.top10),
        top10_share: percent(c.top10_share),
        herfindahl: c.herfindahl,
        largest_sponsor: share(c.largest_sponsor),
        mrr_without_largest_sponsor: ctx.money(c.without_largest_sponsor),
        at_risk_past_due: ctx.money(c.past_due),
        past_due_supporters: c.past_due_supporters,
        from: from.to_string(),
        to: to.to_string(),
        failed_payments: RecoveryView {
            failed: r.failed,
            failed_amount: ctx.money(r.failed_minor),
            recovered: r.recovered,
            recovered_amount: ctx.money(r.recovered_minor),
            recovery_rate: percent(Ratio::of(r.recovered, r.failed)),
        },
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastMonthView {
    pub month: String,
    /// MRR still running at the month's end.
    pub committed: MoneyView,
    /// MRR known to stop during the month (for the first month, also what
    /// stops before it), and how many pledges.
    pub ending: MoneyView,
    pub ending_pledges: i64,
    /// Yearly pledges renewing in the month: the year's amounts.
    pub yearly_renewals: MoneyView,
    pub yearly_renewal_count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastReport {
    pub currency: String,
    pub at: DateTime<Utc>,
    /// MRR running now; each month's committed MRR is this less the
    /// `ending` of that month and the months before.
    pub mrr: MoneyView,
    pub rules: String,
    pub months: Vec<ForecastMonthView>,
}

pub async fn forecast(db: &Db, now: DateTime<Utc>) -> Result<ForecastReport> {
    let ctx = Ctx::load(db).await?;
    let pledges = store::analytics::pledges(db, ctx.currency).await?;
    let mrr: i64 = pledges
        .iter()
        .filter(|p| p.running_at(now))
        .map(analytics::Pledge::monthly)
        .sum();
    let months = analytics::forecast(&pledges, now, FORECAST_MONTHS)?;
    Ok(ForecastReport {
        currency: ctx.currency.code().to_owned(),
        at: now,
        mrr: ctx.money(mrr),
        rules: FORECAST_RULES.to_owned(),
        months: months
            .iter()
            .map(|m| ForecastMonthView {
                month: m.month.to_string(),
                committed: ctx.money(m.committed),
                ending: ctx.money(m.ending),
                ending_pledges: m.ending_pledges,
                yearly_renewals: ctx.money(m.yearly_renewals),
                yearly_renewal_count: m.yearly_renewal_count,
            })
            .collect(),
    })
}

fn csv_out(rows: Vec<Vec<String>>) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(&r).map_err(Error::internal_from)?;
    }
    let bytes = w.into_inner().map_err(Error::internal_from)?;
    String::from_utf8(bytes).map_err(Error::internal_from)
}

fn dec(currency: &str, m: &MoneyView) -> String {
    match Currency::parse(currency) {
        Some(c) => Money::new(m.amount_minor, c).decimal(),
        None => m.amount_minor.to_string(),
    }
}

/// Movements as CSV: a `total` row per month, then one per tier. Amounts
/// in major units; ratios in basis points.
pub fn movements_csv(r: &MovementsReport) -> Result<String> {
    let mut rows = vec![
        [
            "month",
            "scope",
            "tier_id",
            "tier",
            "currency",
            "start",
            "new",
            "expansion",
            "reactivation",
            "contraction",
            "churn",
            "end",
            "new_supporters",
            "expansion_supporters",
            "reactivation_supporters",
            "contraction_supporters",
            "churn_supporters",
            "supporters_start",
            "supporters_end",
            "quick_ratio_bp",
            "net_revenue_retention_bp",
            "gross_revenue_retention_bp",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let bp = |r: &Option<RatioView>| {
        r.as_ref()
            .map(|r| r.basis_points.to_string())
            .unwrap_or_default()
    };
    for m in &r.months {
        for row in std::iter::once(&m.total).chain(&m.tiers) {
            let d = |x: &MoneyView| dec(&r.currency, x);
            rows.push(vec![
                m.month.clone(),
                if row.tier_id.is_some() {
                    "tier"
                } else {
                    "total"
                }
                .into(),
                row.tier_id.map(|t| t.to_string()).unwrap_or_default(),
                crate::domain::spreadsheet_safe(row.tier_name.as_deref().unwrap_or_default()),
                r.currency.clone(),
                d(&row.start),
                d(&row.new.amount),
                d(&row.expansion.amount),
                d(&row.reactivation.amount),
                d(&row.contraction.amount),
                d(&row.churn.amount),
                d(&row.end),
                row.new.supporters.to_string(),
                row.expansion.supporters.to_string(),
                row.reactivation.supporters.to_string(),
                row.contraction.supporters.to_string(),
                row.churn.supporters.to_string(),
                row.supporters_start.to_string(),
                row.supporters_end.to_string(),
                bp(&row.quick_ratio),
                bp(&row.net_revenue_retention),
                bp(&row.gross_revenue_retention),
            ]);
        }
    }
    csv_out(rows)
}

/// Cohorts as CSV: one row per cohort and month.
pub fn cohorts_csv(r: &CohortsReport) -> Result<String> {
    let mut rows = vec![
        [
            "cohort",
            "size",
            "month",
            "age",
            "supporters",
            "supporter_retention_bp",
            "currency",
            "mrr",
            "mrr_retention_bp",
        ]
        .map(String::from)
        .to_vec(),
    ];
    let bp = |r: &Option<RatioView>| {
        r.as_ref()
            .map(|r| r.basis_points.to_string())
            .unwrap_or_default()
    };
    for c in &r.cohorts {
        for cell in &c.cells {
            rows.push(vec![
                c.month.clone(),
                c.size.to_string(),
                cell.month.clone(),
                cell.age.to_string(),
                cell.supporters.to_string(),
                bp(&cell.supporter_retention),
                r.currency.clone(),
                dec(&r.currency, &cell.mrr),
                bp(&cell.mrr_retention),
            ]);
        }
    }
    csv_out(rows)
}
