//! Calendar months in UTC, the unit of reports and of "raised this month".

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::error::{Error, Result};

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
        if !(1..=12).contains(&month) || !(2000..=9998).contains(&year) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
