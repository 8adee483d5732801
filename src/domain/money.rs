//! Money: integer minor units with an ISO 4217 currency. No floats anywhere.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An ISO 4217 currency that has minor units (funds and metals are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Accepts a three-letter code in any case.
    pub fn parse(code: &str) -> Option<Self> {
        let code = code.trim().to_ascii_uppercase();
        let currency = iso_currency::Currency::from_code(&code)?;
        if currency.is_fund() || currency.is_special() || currency.exponent().is_none() {
            return None;
        }
        Some(Currency(currency))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn exponent(self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(2))
    }

    /// A symbol only where it names one currency unambiguously; "$" is USD
    /// alone, so CAD shows as "CA$" and never passes for dollars of another
    /// country.
    fn prefix(self) -> String {
        let symbol = match self.code() {
            "USD" => "$",
            "EUR" => "€",
            "GBP" => "£",
            "JPY" => "¥",
            "INR" => "₹",
            "KRW" => "₩",
            "CAD" => "CA$",
            "AUD" => "A$",
            "NZD" => "NZ$",
            "BRL" => "R$",
            "MXN" => "MX$",
            "ILS" => "₪",
            "UAH" => "₴",
            "NGN" => "₦",
            "PHP" => "₱",
            "VND" => "₫",
            other => return format!("{other}\u{a0}"),
        };
        symbol.to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

super::decode_from_text!(Currency);

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = String::deserialize(d)?;
        Currency::parse(&code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown currency {code:?}")))
    }
}

/// An amount of money. Arithmetic only between equal currencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// An amount as a person types it in major units: "12", "12.5",
    /// "12.50", or "12,50" (a decimal comma). No signs, no grouping, no
    /// more decimals than the currency has; the result may still need the
    /// usual range checks.
    pub fn parse_decimal(text: &str, currency: Currency) -> Result<Money, String> {
        let exp = currency.exponent() as usize;
        let wrong = || {
            if exp == 0 {
                "enter a whole amount, like 12".to_owned()
            } else {
                format!(
                    "enter an amount like 12.{}, without thousands separators",
                    "5".repeat(exp)
                )
            }
        };
        let text = text.trim();
        let (whole, fraction) = match text.split_once(['.', ',']) {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > exp {
            return Err(wrong());
        }
        let scale = 10i64.pow(exp as u32);
        let whole: i64 = whole.parse().map_err(|_| wrong())?;
        let fraction: i64 = format!("{fraction:0<exp$}").parse().unwrap_or(0);
        whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(fraction))
            .map(|minor| Money::new(minor, currency))
            .ok_or_else(wrong)
    }

    /// Human form: "€15,610", "€15,610.50", "¥1,000", "KWD 1.500", "-€3".
    /// Whole amounts drop the zero fraction, as funding pages show them.
    pub fn display(&self) -> String {
        let exp = self.currency.exponent();
        let scale = 10u64.pow(exp);
        let magnitude = self.amount_minor.unsigned_abs();
        let (major, minor) = (magnitude / scale, magnitude % scale);
        let mut out = String::new();
        if self.amount_minor < 0 {
            out.push('-');
        }
        out.push_str(&self.currency.prefix());
        out.push_str(&group_thousands(major));
        if minor != 0 {
            out.push('.');
            out.push_str(&format!("{minor:0width$}", width = exp as usize));
        }
        out
    }

    /// Plain decimal in major units for spreadsheets: "15610.50", "-3.00",
    /// "1000" (JPY), "1.500" (KWD).
    pub fn decimal(&self) -> String {
        let exp = self.currency.exponent();
        let scale = 10u64.pow(exp);
        let magnitude = self.amount_minor.unsigned_abs();
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        if exp == 0 {
            return format!("{sign}{magnitude}");
        }
        format!(
            "{sign}{}.{:0width$}",
            magnitude / scale,
            magnitude % scale,
            width = exp as usize
        )
    }

    pub fn view(&self) -> MoneyView {
        MoneyView {
            amount_minor: self.amount_minor,
            currency: self.currency.code().to_owned(),
            display: self.display(),
        }
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// How every amount leaves the API.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct MoneyView {
    /// Integer amount in the currency's minor unit (cents for EUR, yen for JPY).
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Formatted for people, e.g. "€15,610".
    pub display: String,
}

/// The largest amount accepted anywhere an amount enters (tiers, pledges,
/// gifts, checkout, manual contributions, goals; refunds are bounded by
/// their payment): a billion major units of a three-decimal currency,
/// ten billion of a two-decimal one.
///
/// Why sums stay safe: the database sums amounts as BIGINT (SQLite raises
/// "integer overflow", PostgreSQL "bigint out of range" past i64), and
/// i64::MAX / MAX_AMOUNT_MINOR is about 9.2 million, so no sum fails
/// before 9.2 million rows all sit at the cap. Real rows are far smaller
/// (Stripe itself stops at 99,999,999 minor units per payment) and far
/// fewer (a benchmark instance has a million ledger entries). Rows written
/// above the cap before it was enforced are not rewritten: such a pledge
/// must be cancelled; until then the sums that include it fail loudly in
/// the log, and no total is ever a wrapped number.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// `a + b` for sums of amounts, an error rather than a wrapped number.
/// Capped amounts never get there (see [`MAX_AMOUNT_MINOR`]).
pub fn add(a: i64, b: i64) -> crate::error::Result<i64> {
    a.checked_add(b).ok_or_else(overflow)
}

/// The sum of `amounts`, likewise.
pub fn sum(amounts: impl IntoIterator<Item = i64>) -> crate::error::Result<i64> {
    amounts.into_iter().try_fold(0, add)
}

/// `a - b`, likewise.
pub fn sub(a: i64, b: i64) -> crate::error::Result<i64> {
    a.checked_sub(b).ok_or_else(overflow)
}

fn overflow() -> crate::error::Error {
    crate::error::Error::internal("an amount sum overflows i64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(n: i64) -> Money {
        Money::new(n, Currency::parse("eur").unwrap())
    }

    #[test]
    fn amounts_are_read_as_people_type_them() {
        let e = Currency::parse("eur").unwrap();
        let minor = |t| Money::parse_decimal(t, e).map(|m| m.amount_minor);
        assert_eq!(minor("12"), Ok(1200));
        assert_eq!(minor(" 12.5 "), Ok(1250));
        assert_eq!(minor("12,05"), Ok(1205));
        assert_eq!(minor("0.01"), Ok(1));
        for bad in [
            "",
            "-3",
            "1.234",
            "1,000.00",
            "12e3",
            ".5",
            "99999999999999999999",
        ] {
            assert!(minor(bad).is_err(), "{bad}");
        }
        let yen = Currency::parse("jpy").unwrap();
        assert_eq!(
            Money::parse_decimal("1000", yen).map(|m| m.amount_minor),
            Ok(1000)
        );
        assert!(Money::parse_decimal("10.5", yen).is_err());
    }

    #[test]
    fn formats_whole_amounts_without_fraction_and_groups_thousands() {
        assert_eq!(eur(1_561_000).display(), "€15,610");
        assert_eq!(eur(1_561_050).display(), "€15,610.50");
        assert_eq!(eur(5).display(), "€0.05");
        assert_eq!(eur(-300).display(), "-€3");
        assert_eq!(eur(0).display(), "€0");
    }

    #[test]
    fn respects_zero_and_three_decimal_currencies() {
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(jpy.exponent(), 0);
        assert_eq!(Money::new(123_456, jpy).display(), "¥123,456");
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(kwd.exponent(), 3);
        assert_eq!(Money::new(1_500, kwd).display(), "KWD\u{a0}1.500");
        assert_eq!(Money::new(1_005, kwd).display(), "KWD\u{a0}1.005");
    }

    #[test]
    fn decimals_for_spreadsheets_keep_every_digit() {
        assert_eq!(eur(1_561_050).decimal(), "15610.50");
        assert_eq!(eur(-300).decimal(), "-3.00");
        assert_eq!(
            Money::new(1000, Currency::parse("JPY").unwrap()).decimal(),
            "1000"
        );
        assert_eq!(
            Money::new(1500, Currency::parse("KWD").unwrap()).decimal(),
            "1.500"
        );
    }

    #[test]
    fn dollars_of_other_countries_are_never_plain_dollars() {
        let cad = Currency::parse("CAD").unwrap();
        assert_eq!(Money::new(1000, cad).display(), "CA$10");
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(Money::new(1000, usd).display(), "$10");
    }

    #[test]
    fn refuses_unknown_and_fund_currencies() {
        assert!(Currency::parse("XXX").is_none());
        assert!(Currency::parse("XAU").is_none());
        assert!(Currency::parse("EURO").is_none());
        assert!(Currency::parse("").is_none());
    }
}
