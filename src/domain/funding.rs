//! Public funding totals, computed from aggregates the store keeps current.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    money::{Currency, Money, MoneyView},
    pledge::monthly_recurring,
    tier::{Interval, TierKind},
};

/// What the store knows, already summed. Only amounts in the campaign
/// currency are included.
#[derive(Debug, Clone)]
pub struct FundingFacts {
    pub currency: Currency,
    pub monthly_goal_minor: Option<i64>,
    /// Sums of active pledge amounts, per interval.
    pub monthly_pledges_sum: i64,
    pub yearly_pledges_sum: i64,
    pub patrons_count: i64,
    pub sponsors_count: i64,
    /// Income less refunds and disputes (fees are costs, not less given).
    pub raised_this_month: i64,
    pub raised_total: i64,
    /// How many people's payments make up `raised_this_month` and
    /// `raised_total` (each unattributed entry counts as one person),
    /// counted up to `GIVERS_COUNTED`.
    pub givers_this_month: i64,
    pub givers_total: i64,
    pub tiers: Vec<TierFacts>,
    /// The books per calendar year, oldest first.
    pub years: Vec<YearTotals>,
    pub updated_at: DateTime<Utc>,
}

/// One year of the books, in the campaign currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearTotals {
    pub year: i32,
    /// Payments and manual contributions, less refunds and disputes.
    pub income: i64,
    /// Payment provider fees and the costs recorded in the books.
    pub expenses: i64,
    /// How many people's payments make up `income` (each unattributed entry
    /// counts as one person), counted up to `GIVERS_COUNTED`.
    pub givers: i64,
}

#[derive(Debug, Clone)]
pub struct TierFacts {
    pub id: i64,
    pub name: String,
    pub kind: TierKind,
    pub amount_minor: i64,
    pub interval: Interval,
    pub supporters: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Funding {
    pub currency: String,
    /// Active recurring pledges per month; yearly pledges count as a twelfth.
    /// Null (like `progress` and `raised_*`) while fewer people contribute
    /// than `pages.privacy_threshold`, so no total tells one person's amount.
    pub monthly_recurring: Option<MoneyView>,
    pub patrons_count: i64,
    pub sponsors_count: i64,
    /// The monthly goal, or null.
    pub goal: Option<MoneyView>,
    /// Percent of the monthly goal covered by `monthly_recurring` (may exceed
    /// 100), or null without a goal.
    pub progress: Option<Progress>,
    /// Recurring, one-time and manual income this calendar month (UTC), less
    /// refunds and disputes.
    pub raised_this_month: Option<MoneyView>,
    pub raised_total: Option<MoneyView>,
    pub tiers: Vec<TierFunding>,
    pub updated_at: DateTime<Utc>,
    /// The years whose income may be published (funding.json's history);
    /// not part of this JSON answer.
    #[serde(skip)]
    pub history: Vec<YearTotals>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Progress {
    /// Whole percent, rounded down.
    pub percent: i64,
    /// Hundredths of a percent, rounded down, for precise progress bars.
    pub basis_points: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierFunding {
    pub id: i64,
    pub name: String,
    pub kind: TierKind,
    pub amount: MoneyView,
    pub interval: Interval,
    /// Null while the tier has fewer supporters than the privacy threshold.
    pub supporters: Option<i64>,
}

/// Whether a count of supporters may be published: at least `threshold`.
pub fn shown_count(count: i64, threshold: i64) -> Option<i64> {
    (count >= threshold).then_some(count)
}

/// The privacy rule behind every public sum: it is hidden while one to
/// `threshold - 1` people make it up, so no public number tells one
/// person's amount. An empty sum (nobody, nothing) tells nothing about
/// anyone. Every public view gets its sums from `Funding::from_facts`,
/// which asks this function and nothing else.
pub fn publishable(people: i64, minor: i64, threshold: i64) -> bool {
    (people == 0 && minor == 0) || people >= threshold
}

impl Progress {
    pub fn toward(value: i64, goal: i64) -> Option<Progress> {
        if goal <= 0 {
            return None;
        }
        let basis_points =
            i64::try_from(i128::from(value.max(0)) * 10_000 / i128::from(goal)).unwrap_or(i64::MAX);
        Some(Progress {
            percent: basis_points / 100,
            basis_points,
        })
    }
}

impl Funding {
    /// The public view. Totals are hidden while 1 to `privacy_threshold - 1`
    /// people contribute, and a tier's count is shown only once it has
    /// `privacy_threshold` supporters.
    pub fn from_facts(f: &FundingFacts, privacy_threshold: i64) -> Self {
        let money = |minor| Money::new(minor, f.currency).view();
        // A total past i64 (only data above MAX_AMOUNT_MINOR gets there)
        // is shown as unknown, never wrapped into a wrong number.
        let recurring = monthly_recurring(f.monthly_pledges_sum, f.yearly_pledges_sum);
        let shown = |people: i64, minor: i64| publishable(people, minor, privacy_threshold);
        let contributors = f.patrons_count + f.sponsors_count;
        let totals_shown = recurring.is_some_and(|r| shown(contributors, r));
        let total = |minor| totals_shown.then(|| money(minor));
        // Raised sums follow the people who paid; before anyone paid, they
        // follow the recurring total.
        let raised = |people, minor| {
            (shown(people, minor) && (people > 0 || totals_shown)).then(|| money(minor))
        };
        Funding {
            currency: f.currency.code().to_owned(),
            monthly_recurring: recurring.and_then(total),
            patrons_count: f.patrons_count,
            sponsors_count: f.sponsors_count,
            goal: f.monthly_goal_minor.map(money),
            progress: f
                .monthly_goal_minor
                .filter(|_| totals_shown)
                .and_then(|g| Progress::toward(recurring?, g)),
            raised_this_month: raised(f.givers_this_month, f.raised_this_month),
            raised_total: raised(f.givers_total, f.raised_total),
            tiers: f
                .tiers
                .iter()
                .map(|t| TierFunding {
                    id: t.id,
                    name: t.name.clone(),
                    kind: t.kind,
                    amount: money(t.amount_minor),
                    interval: t.interval,
                    supporters: shown_count(t.supporters, privacy_threshold),
                })
                .collect(),
            updated_at: f.updated_at,
            // A year shows only when its own givers may be shown: its
            // income (and its fees, which follow the income) is a sum too.
            history: f
                .years
                .iter()
                .filter(|y| shown(y.givers, y.income))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rounds_down_and_may_pass_the_goal() {
        assert_eq!(
            Progress::toward(1, 3),
            Some(Progress {
                percent: 33,
                basis_points: 3333
            })
        );
        assert_eq!(Progress::toward(300, 200).unwrap().percent, 150);
        assert_eq!(Progress::toward(5, 0), None);
    }

    #[test]
    fn totals_combine_monthly_and_yearly_pledges() {
        let eur = Currency::parse("EUR").unwrap();
        let facts = FundingFacts {
            currency: eur,
            monthly_goal_minor: Some(100_000),
            monthly_pledges_sum: 1_500_000,
            yearly_pledges_sum: 1_320_000,
            patrons_count: 3091,
            sponsors_count: 2,
            raised_this_month: 0,
            raised_total: 0,
            givers_this_month: 0,
            givers_total: 0,
            tiers: vec![],
            years: vec![],
            updated_at: Utc::now(),
        };
        let f = Funding::from_facts(&facts, 3);
        let monthly = f.monthly_recurring.unwrap();
        assert_eq!(monthly.amount_minor, 1_610_000);
        assert_eq!(monthly.display, "€16,100");
        assert_eq!(f.progress.unwrap().percent, 1610);
    }

    #[test]
    fn small_numbers_are_not_published() {
        let eur = Currency::parse("EUR").unwrap();
        let tier = |supporters| TierFacts {
            id: 1,
            name: "Patron".into(),
            kind: TierKind::Patron,
            amount_minor: 700,
            interval: Interval::Month,
            supporters,
        };
        let facts = |patrons: i64| FundingFacts {
            currency: eur,
            monthly_goal_minor: Some(10_000),
            monthly_pledges_sum: 700 * patrons,
            yearly_pledges_sum: 0,
            patrons_count: patrons,
            sponsors_count: 0,
            raised_this_month: 700 * patrons,
            raised_total: 700 * patrons,
            givers_this_month: patrons,
            givers_total: patrons,
            tiers: vec![tier(patrons)],
            years: vec![],
            updated_at: Utc::now(),
        };
        let two = Funding::from_facts(&facts(2), 3);
        assert_eq!(two.patrons_count, 2);
        assert!(two.monthly_recurring.is_none() && two.progress.is_none());
        assert!(two.raised_total.is_none() && two.raised_this_month.is_none());
        assert_eq!(two.tiers[0].supporters, None);
        assert!(two.goal.is_some());
        let three = Funding::from_facts(&facts(3), 3);
        assert_eq!(three.monthly_recurring.unwrap().amount_minor, 2100);
        assert_eq!(three.tiers[0].supporters, Some(3));
    }

    #[test]
    fn one_persons_gift_is_not_published_without_recurring_supporters() {
        let eur = Currency::parse("EUR").unwrap();
        let facts = |givers: i64| FundingFacts {
            currency: eur,
            monthly_goal_minor: None,
            monthly_pledges_sum: 0,
            yearly_pledges_sum: 0,
            patrons_count: 0,
            sponsors_count: 0,
            raised_this_month: 5000,
            raised_total: 5000,
            givers_this_month: givers,
            givers_total: givers,
            tiers: vec![],
            years: vec![],
            updated_at: Utc::now(),
        };
        let one = Funding::from_facts(&facts(1), 3);
        assert!(one.raised_total.is_none() && one.raised_this_month.is_none());
        let many = Funding::from_facts(&facts(3), 3);
        assert_eq!(many.raised_total.unwrap().amount_minor, 5000);
        // Nobody and nothing yet: zeros tell nothing about anyone.
        let empty = Funding::from_facts(
            &FundingFacts {
                raised_this_month: 0,
                raised_total: 0,
                ..facts(0)
            },
            3,
        );
        assert_eq!(empty.raised_total.unwrap().amount_minor, 0);
    }
}
