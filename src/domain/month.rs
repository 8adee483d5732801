//! Calendar months and days in UTC: the unit of reports and of "raised
//! this month", and every date a request may carry.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Deserializer};

use crate::error::{Error, FieldError, Result};

/// The years a request may name, for months and days alike. Nothing here
/// happened before 2000, and staying well inside chrono's range means
/// date arithmetic (a year back, the month after) can never fail.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=9998;

/// A calendar day from a request (query or body), `YYYY-MM-DD`, in
/// [`YEARS`]. Every handler takes dates as `Day`, so an absurd date is a
/// 422 at the edge, never a panic deeper in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(NaiveDate);

/// Day ranges cover at most this many days per request (ten years).
pub const MAX_RANGE_DAYS: i64 = 3660;

impl Day {
    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        let bad = || {
            FieldError::new(
                field,
                format!(
                    "must be a day as YYYY-MM-DD in the years {} to {}",
                    YEARS.start(),
                    YEARS.end()
                ),
            )
        };
        let s = s.trim();
        if s.len() != 10 {
            return Err(bad());
        }
        let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
        if !YEARS.contains(&date.year()) {
            return Err(bad());
        }
        Ok(Day(date))
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// Midnight UTC at the start of the day.
    pub fn start(self) -> DateTime<Utc> {
        self.0.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
    }

    /// `from..=to` with defaults (`to` today, `from` `default_days` before
    /// `to`), refused when reversed or longer than [`MAX_RANGE_DAYS`].
    pub fn range(
        from: Option<Day>,
        to: Option<Day>,
        default_days: i64,
        today: NaiveDate,
    ) -> Result<(NaiveDate, NaiveDate)> {
        let to = to.map_or(today, Day::date);
        let from = from.map_or_else(
            || to - chrono::Duration::days(default_days.min(MAX_RANGE_DAYS)),
            Day::date,
        );
        Day::ordered(from, to, "from")?;
        if (to - from).num_days() > MAX_RANGE_DAYS {
            return Err(Error::field(
                "to",
                format!("a range covers at most {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok((from, to))
    }

    /// Refuses `from` after `to`, naming `field`.
    pub fn ordered(from: NaiveDate, to: NaiveDate, field: &str) -> Result<()> {
        if from > to {
            return Err(Error::field(
                field,
                "must not be after the end of the range",
            ));
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        // serde names the field around this message.
        Day::parse("", &s).map_err(|e| serde::de::Error::custom(e.message))
    }
}

impl utoipa::PartialSchema for Day {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            // The years of `YEARS`, 2000 to 9998.
            .pattern(Some(
                r"^(?:[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$",
            ))
            .description(Some(format!(
                "A day, YYYY-MM-DD, in the years {} to {}",
                YEARS.start(),
                YEARS.end()
            )))
            .into()
    }
}

impl utoipa::ToSchema for Day {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

/// Reports cover at most this many months per request.
pub const MAX_REPORT_MONTHS: usize = 120;

impl Month {
    pub fn parse(field: &str, s: &str) -> Result<Self> {
        let bad = || Error::field(field, "must be a month as YYYY-MM");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i32 = y.parse().map_err(|_| bad())?;
        let month: u32 = m.parse().map_err(|_| bad())?;
        if !(1..=12).contains(&month) || !YEARS.contains(&year) {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    pub fn of(t: DateTime<Utc>) -> Self {
        Month {
            year: t.year(),
            month: t.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid month")
    }

    pub fn start(self) -> DateTime<Utc> {
        self.first_day()
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
    }

    pub fn next(self) -> Self {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Months since the start of year 0: consecutive months differ by one.
    pub fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    /// The month with this `index`.
    pub fn at(index: i64) -> Self {
        Month {
            year: index.div_euclid(12) as i32,
            month: index.rem_euclid(12) as u32 + 1,
        }
    }

    /// This month `n` months earlier.
    pub fn back(self, n: u32) -> Self {
        let index = self.year * 12 + self.month as i32 - 1 - n as i32;
        Month {
            year: index.div_euclid(12),
            month: index.rem_euclid(12) as u32 + 1,
        }
    }

    /// The first instant after this month.
    pub fn end(self) -> DateTime<Utc> {
        self.next().start()
    }

    /// Months from `from` to `to`, both included.
    pub fn range(from: Month, to: Month) -> Result<Vec<Month>> {
        if from > to {
            return Err(Error::field("to", "must not be before from"));
        }
        let mut months = vec![from];
        while *months.last().expect("non-empty") < to {
            if months.len() == MAX_REPORT_MONTHS {
                return Err(Error::field(
                    "to",
                    format!("a report covers at most {MAX_REPORT_MONTHS} months"),
                ));
            }
            months.push(months.last().expect("non-empty").next());
        }
        Ok(months)
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The months reported: `months` months from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub first: Month,
    pub months: usize,
}

impl Window {
    pub fn new(from: Month, to: Month) -> Self {
        Window {
            first: from,
            months: (to.index() - from.index() + 1).max(0) as usize,
        }
    }

    pub fn month(&self, i: usize) -> Month {
        Month::at(self.first.index() + i as i64)
    }

    /// The index of the month holding `t` (negative before the window).
    pub fn index_of(&self, t: DateTime<Utc>) -> i64 {
        Month::of(t).index() - self.first.index()
    }

    /// Boundary `k` is the start of month `k` (boundary `months` is the
    /// end of the last). The first boundary after `t`, unclamped.
    pub fn boundary_after(&self, t: DateTime<Utc>) -> i64 {
        self.index_of(t) + 1
    }

    pub fn boundary(&self, k: usize) -> DateTime<Utc> {
        self.month(k).start()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_count_back_across_years() {
        let m = Month {
            year: 2026,
            month: 2,
        };
        assert_eq!(m.back(0), m);
        assert_eq!(
            m.back(1),
            Month {
                year: 2026,
                month: 1
            }
        );
        assert_eq!(
            m.back(2),
            Month {
                year: 2025,
                month: 12
            }
        );
        assert_eq!(
            m.back(14),
            Month {
                year: 2024,
                month: 12
            }
        );
    }

    #[test]
    fn parses_and_walks_across_years() {
        let m = Month::parse("from", "2025-11").unwrap();
        let r = Month::range(m, Month::parse("to", "2026-02").unwrap()).unwrap();
        let names: Vec<_> = r.iter().map(|m| m.to_string()).collect();
        assert_eq!(names, ["2025-11", "2025-12", "2026-01", "2026-02"]);
        assert_eq!(
            Month::parse("x", "2025-12").unwrap().end().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn refuses_bad_months_and_huge_ranges() {
        for bad in ["2025-13", "2025-1", "25-01", "2025/01", "", "2025-00"] {
            assert!(Month::parse("from", bad).is_err(), "{bad}");
        }
        let a = Month::parse("from", "2000-01").unwrap();
        let b = Month::parse("to", "2020-01").unwrap();
        assert!(Month::range(a, b).is_err());
        assert!(Month::range(b, a).is_err());
    }

    #[test]
    fn days_stay_in_sane_years_and_ranges_are_bounded() {
        let day = |s| Day::parse("to", s);
        assert_eq!(day("2026-02-28").unwrap().date().to_string(), "2026-02-28");
        for bad in [
            "-262143-01-01",
            "+262142-12-31",
            "1999-12-31",
            "9999-01-01",
            "2026-02-30",
            "2026-2-3",
            "",
        ] {
            assert!(day(bad).is_err(), "{bad}");
        }
        let today = NaiveDate::from_ymd_opt(2026, 5, 10).unwrap();
        let (from, to) = Day::range(None, None, 365, today).unwrap();
        assert_eq!((from.to_string(), to), ("2025-05-10".to_owned(), today));
        let early = day("2000-01-01").ok();
        assert!(
            Day::range(early, None, 365, today).is_err(),
            "more than ten years"
        );
        assert!(
            Day::range(day("2026-05-11").ok(), None, 365, today).is_err(),
            "reversed"
        );
        let json: Result<Day, _> = serde_json::from_str("\"-262143-01-01\"");
        assert!(json.is_err());
    }
}
