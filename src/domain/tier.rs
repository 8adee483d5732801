//! Tiers: what a supporter can choose, and the rules a tier must satisfy.

use super::{Checks, amount, money::Currency, text, text_enum};
use crate::error::Result;

text_enum!(
    /// Who a tier is for.
    TierKind { Patron => "patron", Sponsor => "sponsor" }
);

text_enum!(
    /// How often a pledge on the tier is paid.
    Interval { Month => "month", Year => "year" }
);

/// A tier's editable fields, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierDraft {
    pub kind: TierKind,
    pub name: String,
    pub description: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: Interval,
    /// Pay what you want, at or above this amount; `amount_minor` is then the
    /// suggested amount.
    pub pwyw_min_minor: Option<i64>,
    /// How many supporters the tier takes at most.
    pub slots: Option<i64>,
    /// Lower ranks are shown first.
    pub rank: i64,
}

/// A change to a tier: each field present replaces the current one
/// (`Some(None)` clears an optional one). Kind and currency are fixed.
#[derive(Debug, Clone, Default)]
pub struct TierPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub amount_minor: Option<i64>,
    pub interval: Option<Interval>,
    pub pwyw_min_minor: Option<Option<i64>>,
    pub slots: Option<Option<i64>>,
    pub rank: Option<i64>,
}

impl TierPatch {
    /// The draft `current` becomes; validate it before use.
    pub fn apply(self, current: TierDraft) -> TierDraft {
        TierDraft {
            name: self.name.unwrap_or(current.name),
            description: self.description.unwrap_or(current.description),
            amount_minor: self.amount_minor.unwrap_or(current.amount_minor),
            interval: self.interval.unwrap_or(current.interval),
            pwyw_min_minor: self.pwyw_min_minor.unwrap_or(current.pwyw_min_minor),
            slots: self.slots.unwrap_or(current.slots),
            rank: self.rank.unwrap_or(current.rank),
            ..current
        }
    }
}

impl TierDraft {
    /// Checks every field and reports all failures at once.
    pub fn validate(self) -> Result<Self> {
        let mut checks = Checks::new();
        let name = checks.take(text("name", &self.name, 1, 80, false));
        let description = checks.take(text("description", &self.description, 0, 4000, true));
        checks.take(amount("amount_minor", self.amount_minor));
        if let Some(min) = self.pwyw_min_minor {
            checks.take(amount("pwyw_min_minor", min));
            if min > self.amount_minor {
                checks.fail(
                    "pwyw_min_minor",
                    "must not exceed the suggested amount_minor",
                );
            }
        }
        if let Some(slots) = self.slots
            && !(1..=1_000_000).contains(&slots)
        {
            checks.fail("slots", "must be between 1 and 1000000");
        }
        if !(-1_000_000..=1_000_000).contains(&self.rank) {
            checks.fail("rank", "must be between -1000000 and 1000000");
        }
        checks.finish()?;
        Ok(Self {
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            ..self
        })
    }

    /// The amount a new pledge on this tier would pay: the tier's price, or a
    /// chosen amount not below the pay-what-you-want minimum.
    pub fn pledge_amount(&self, chosen: Option<i64>) -> std::result::Result<i64, String> {
        if let Some(a) = chosen {
            amount("amount_minor", a).map_err(|e| e.message)?;
        }
        match (chosen, self.pwyw_min_minor) {
            (None, _) => Ok(self.amount_minor),
            (Some(a), Some(min)) if a >= min => Ok(a),
            (Some(_), Some(min)) => Err(format!("must be at least {min} on this tier")),
            (Some(a), None) if a == self.amount_minor => Ok(a),
            (Some(_), None) => Err("this tier has a fixed price".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> TierDraft {
        TierDraft {
            kind: TierKind::Patron,
            name: " Supporter ".into(),
            description: "Our thanks".into(),
            amount_minor: 300,
            currency: Currency::parse("EUR").unwrap(),
            interval: Interval::Month,
            pwyw_min_minor: None,
            slots: None,
            rank: 0,
        }
    }

    #[test]
    fn trims_and_accepts_a_plain_tier() {
        assert_eq!(draft().validate().unwrap().name, "Supporter");
    }

    #[test]
    fn reports_every_bad_field() {
        let bad = TierDraft {
            name: "".into(),
            amount_minor: 0,
            slots: Some(0),
            ..draft()
        };
        let crate::error::Error::Validation(fields) = bad.validate().unwrap_err() else {
            panic!("expected validation error");
        };
        let names: Vec<_> = fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(names, ["name", "amount_minor", "slots"]);
    }

    #[test]
    fn pay_what_you_want_minimum_is_enforced() {
        let t = TierDraft {
            pwyw_min_minor: Some(100),
            ..draft()
        };
        assert_eq!(t.pledge_amount(Some(150)), Ok(150));
        assert!(t.pledge_amount(Some(99)).is_err());
        assert_eq!(draft().pledge_amount(None), Ok(300));
        assert!(draft().pledge_amount(Some(500)).is_err());
        let cap = crate::domain::money::MAX_AMOUNT_MINOR;
        assert_eq!(t.pledge_amount(Some(cap)), Ok(cap));
        for huge in [cap + 1, i64::MAX] {
            assert!(t.pledge_amount(Some(huge)).is_err(), "{huge}");
        }
    }
}
