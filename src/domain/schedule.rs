//! Cron schedules (with seconds, in UTC): when each scheduled job fires,
//! which firings were missed, and how long one period is.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::{Cron, parser::CronParser};

/// A cron schedule with seconds, in UTC.
#[derive(Debug, Clone)]
pub struct Schedule(Cron);

impl Schedule {
    pub fn parse(pattern: &str) -> std::result::Result<Self, String> {
        CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(pattern)
            .map(Schedule)
            .map_err(|e| format!("{pattern:?} is not a cron schedule with seconds: {e}"))
    }

    /// Slots after `after` up to and including `until`, the latest `limit`.
    pub fn slots(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut slots = std::collections::VecDeque::new();
        let mut cursor = after;
        while let Ok(next) = self.0.find_next_occurrence(&cursor, false) {
            if next > until {
                break;
            }
            if slots.len() == limit {
                slots.pop_front();
            }
            slots.push_back(next);
            cursor = next;
        }
        slots.into()
    }

    /// The time between the next two firings after `at`.
    pub fn period(&self, at: DateTime<Utc>) -> chrono::Duration {
        let first = self.0.find_next_occurrence(&at, false).unwrap_or(at);
        let second = self
            .0
            .find_next_occurrence(&first, false)
            .unwrap_or(first + chrono::Duration::days(31));
        second - first
    }
}

impl FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Schedule::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, h, m, s).unwrap()
    }

    #[test]
    fn slots_are_the_firings_after_the_last_one_up_to_now() {
        let every_15 = Schedule::parse("0 */15 * * * *").unwrap();
        let slots = every_15.slots(at(10, 0, 0), at(10, 50, 0), 10);
        assert_eq!(slots, vec![at(10, 15, 0), at(10, 30, 0), at(10, 45, 0)]);
        assert!(every_15.slots(at(10, 45, 0), at(10, 59, 59), 10).is_empty());
    }

    #[test]
    fn catching_up_keeps_the_latest_slots_within_the_limit() {
        let hourly = Schedule::parse("0 0 * * * *").unwrap();
        let slots = hourly.slots(at(0, 0, 0), at(10, 30, 0), 2);
        assert_eq!(slots, vec![at(9, 0, 0), at(10, 0, 0)]);
    }

    #[test]
    fn the_period_is_the_gap_between_firings() {
        let daily = Schedule::parse("0 5 0 * * *").unwrap();
        assert_eq!(daily.period(at(12, 0, 0)), chrono::Duration::days(1));
        assert!(Schedule::parse("every day").is_err());
        assert!(
            Schedule::parse("*/5 * * * *").is_err(),
            "seconds are required"
        );
    }
}
