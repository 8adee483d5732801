//! The ledger: append-only money movements. Corrections are new entries that
//! reverse old ones; nothing is ever edited or deleted.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Checks, amount,
    money::{Currency, add, sub},
    text, text_enum,
};
use crate::error::Result;

text_enum!(
    EntryKind {
        Payment => "payment",
        Refund => "refund",
        Dispute => "dispute",
        Fee => "fee",
        Manual => "manual",
    }
);

impl EntryKind {
    /// Money received from supporters (before refunds and fees).
    pub fn is_income(self) -> bool {
        matches!(self, EntryKind::Payment | EntryKind::Manual)
    }
}

/// Ledger sums by report column: gross income, and what refunds, disputes
/// and fees took from it, each as a positive amount.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KindSums {
    pub gross: i64,
    pub refunds: i64,
    pub disputes: i64,
    pub fees: i64,
}

impl KindSums {
    /// Adds one signed ledger amount (refunds, disputes and fees are
    /// stored negative) to its column.
    pub fn add(&mut self, kind: EntryKind, signed: i64) -> Result<()> {
        match kind {
            EntryKind::Payment | EntryKind::Manual => self.gross = add(self.gross, signed)?,
            EntryKind::Refund => self.refunds = sub(self.refunds, signed)?,
            EntryKind::Dispute => self.disputes = sub(self.disputes, signed)?,
            EntryKind::Fee => self.fees = sub(self.fees, signed)?,
        }
        Ok(())
    }

    pub fn absorb(&mut self, other: &KindSums) -> Result<()> {
        self.gross = add(self.gross, other.gross)?;
        self.refunds = add(self.refunds, other.refunds)?;
        self.disputes = add(self.disputes, other.disputes)?;
        self.fees = add(self.fees, other.fees)?;
        Ok(())
    }

    /// Gross less refunds, disputes and fees.
    pub fn net(&self) -> Result<i64> {
        sub(
            sub(sub(self.gross, self.refunds)?, self.disputes)?,
            self.fees,
        )
    }
}

/// A contribution that arrived outside Stripe (bank transfer, cash).
#[derive(Debug, Clone)]
pub struct ManualContribution {
    pub supporter_id: Option<i64>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub occurred_at: DateTime<Utc>,
    pub note: String,
    /// The bank's transaction id or similar; recording the same one twice is
    /// refused. Generated when the admin has none.
    pub external_ref: String,
}

impl ManualContribution {
    pub fn parse(
        supporter_id: Option<i64>,
        amount_minor: i64,
        currency: Currency,
        date: NaiveDate,
        today: NaiveDate,
        note: &str,
        external_ref: Option<&str>,
    ) -> Result<Self> {
        let mut checks = Checks::new();
        checks.take(amount("amount_minor", amount_minor));
        if date > today {
            checks.fail("date", "must not be in the future");
        }
        if date.year_ce().1 < 2000 {
            checks.fail("date", "must be in the year 2000 or later");
        }
        let note = checks.take(text("note", note, 0, 1000, true));
        let external_ref = match external_ref {
            Some(r) => checks.take(text("external_reference", r, 1, 200, false)),
            None => Some(format!("manual-{}", uuid::Uuid::new_v4())),
        };
        checks.finish()?;
        Ok(ManualContribution {
            supporter_id,
            amount_minor,
            currency,
            occurred_at: date.and_hms_opt(12, 0, 0).expect("noon exists").and_utc(),
            note: note.unwrap_or_default(),
            external_ref: external_ref.expect("checked"),
        })
    }
}

use chrono::Datelike;

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_contribution_is_dated_at_noon_utc_of_its_day() {
        let c = ManualContribution::parse(
            None,
            5000,
            eur(),
            day("2026-03-31"),
            day("2026-04-02"),
            "",
            Some("BANK-1"),
        )
        .unwrap();
        assert_eq!(c.occurred_at.to_rfc3339(), "2026-03-31T12:00:00+00:00");
        assert_eq!(c.external_ref, "BANK-1");
    }

    #[test]
    fn refuses_future_dates_and_non_positive_amounts() {
        assert!(
            ManualContribution::parse(
                None,
                0,
                eur(),
                day("2026-01-01"),
                day("2026-01-01"),
                "",
                None
            )
            .is_err()
        );
        assert!(
            ManualContribution::parse(
                None,
                10,
                eur(),
                day("2026-01-02"),
                day("2026-01-01"),
                "",
                None
            )
            .is_err()
        );
    }

    #[test]
    fn generates_a_reference_when_none_is_given() {
        let a = ManualContribution::parse(
            None,
            10,
            eur(),
            day("2026-01-01"),
            day("2026-01-01"),
            "",
            None,
        )
        .unwrap();
        let b = ManualContribution::parse(
            None,
            10,
            eur(),
            day("2026-01-01"),
            day("2026-01-01"),
            "",
            None,
        )
        .unwrap();
        assert_ne!(a.external_ref, b.external_ref);
    }
}
