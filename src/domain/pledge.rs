//! Pledges: a supporter's standing commitment on a tier, at the amount agreed
//! when it began (a later tier price change never touches it).

use super::{text_enum, tier::Interval};

text_enum!(
    PledgeStatus { Active => "active", PastDue => "past_due", Canceled => "canceled" }
);

text_enum!(
    /// Where a pledge or ledger entry came from: recorded by hand, Stripe,
    /// or imported from another platform's export (`import` is a generic
    /// CSV). Only Stripe's are ever charged, refunded or reconciled.
    Source {
        Manual => "manual",
        Stripe => "stripe",
        Opencollective => "opencollective",
        Patreon => "patreon",
        Liberapay => "liberapay",
        Kofi => "kofi",
        GithubSponsors => "github_sponsors",
        Import => "import",
    }
);

impl PledgeStatus {
    /// Active and past-due pledges still count toward recurring totals: a
    /// past-due pledge is being retried, not lost.
    pub fn counts_as_active(self) -> bool {
        matches!(self, PledgeStatus::Active | PledgeStatus::PastDue)
    }
}

/// Monthly recurring revenue from sums per interval: yearly pledges count as
/// a twelfth. Dividing the yearly sum once keeps rounding to a single floor.
/// None if it does not fit in i64, which capped amounts never reach (see
/// `MAX_AMOUNT_MINOR`): a wrapped total would be a wrong public number.
pub fn monthly_recurring(monthly_sum: i64, yearly_sum: i64) -> Option<i64> {
    monthly_sum.checked_add(yearly_sum / 12)
}

/// The monthly equivalent of one pledge.
pub fn monthly_equivalent(amount_minor: i64, interval: Interval) -> i64 {
    match interval {
        Interval::Month => amount_minor,
        Interval::Year => amount_minor / 12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yearly_pledges_count_as_a_twelfth() {
        assert_eq!(monthly_equivalent(12_000, Interval::Year), 1_000);
        assert_eq!(monthly_equivalent(500, Interval::Month), 500);
        // Two yearly pledges of 6 sum before dividing: 12/12 = 1, not 0 + 0.
        assert_eq!(monthly_recurring(0, 6 + 6), Some(1));
        assert_eq!(monthly_recurring(i64::MAX, 12), None, "never wraps");
    }
}
