//! The instance's active users, from Mastodon's admin measures API
//! (`POST /api/v1/admin/measures`, an admin token with `admin:read`).
//! Read at most once an hour: a page view must not wait on Mastodon. A
//! failure is remembered for a minute, so an instance that is down slows
//! down one page view a minute at most.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// How long a figure read from Mastodon is kept.
pub const FRESH_FOR: Duration = Duration::from_secs(3600);
/// How long a failure is kept before Mastodon is asked again.
pub const FAILURE_KEPT_FOR: Duration = Duration::from_secs(60);
/// How long Mastodon may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The period the active users are counted over.
pub const DAYS: i64 = 30;

/// Active users over a period, as Mastodon counted them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveUsers {
    pub count: i64,
    pub start_at: NaiveDate,
    pub end_at: NaiveDate,
}

/// Why there is no figure. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    NotConfigured,
    Unreachable(String),
}

impl Unavailable {
    pub fn reason(&self) -> String {
        match self {
            Unavailable::NotConfigured => {
                "not configured: set mastodon.admin_token (and the instance URL)".into()
            }
            Unavailable::Unreachable(why) => format!("the Mastodon instance is unavailable: {why}"),
        }
    }
}

#[derive(Serialize)]
struct MeasuresRequest<'a> {
    keys: [&'a str; 1],
    start_at: String,
    end_at: String,
}

#[derive(Deserialize)]
struct Measure {
    key: String,
    /// A number, as a string.
    total: serde_json::Value,
}

struct Cached {
    at: Instant,
    answer: Result<ActiveUsers, Unavailable>,
}

/// Reads and keeps the instance's active users.
pub struct Measures {
    target: Option<(String, SecretString)>,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

impl Measures {
    /// `target`: the instance's base URL and the admin token; `None` is off.
    pub fn new(target: Option<(String, SecretString)>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("patronage/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Measures {
            target,
            http,
            cached: Mutex::new(None),
        }
    }

    pub fn configured(&self) -> bool {
        self.target.is_some()
    }

    /// The active users of the 30 days up to `today`, from the cache when
    /// fresh. One caller at a time asks Mastodon; the others wait for it.
    pub async fn active_users(&self, today: NaiveDate) -> Result<ActiveUsers, Unavailable> {
        let Some((instance, token)) = &self.target else {
            return Err(Unavailable::NotConfigured);
        };
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let kept = if c.answer.is_ok() {
                FRESH_FOR
            } else {
                FAILURE_KEPT_FOR
            };
            if c.at.elapsed() < kept {
                return c.answer.clone();
            }
        }
        let answer = self.ask(instance, token, today).await;
        if let Err(Unavailable::Unreachable(why)) = &answer {
            tracing::warn!(error = %why, "could not read the instance's active users");
        }
        *cached = Some(Cached {
            at: Instant::now(),
            answer: answer.clone(),
        });
        answer
    }

    async fn ask(
        &self,
        instance: &str,
        token: &SecretString,
        today: NaiveDate,
    ) -> Result<ActiveUsers, Unavailable> {
        let start_at = today - chrono::Days::new(DAYS as u64 - 1);
        let res = self
            .http
            .post(format!("{instance}/api/v1/admin/measures"))
            .bearer_auth(token.expose_secret())
            .json(&MeasuresRequest {
                keys: ["active_users"],
                start_at: start_at.to_string(),
                end_at: today.to_string(),
            })
            .send()
            .await
            .map_err(|e| {
                Unavailable::Unreachable(if e.is_timeout() {
                    "no answer in time".into()
                } else {
                    "could not connect".into()
                })
            })?;
        let status = res.status();
        if !status.is_success() {
            return Err(Unavailable::Unreachable(format!(
                "it answered {}",
                status.as_u16()
            )));
        }
        let measures: Vec<Measure> = res
            .json()
            .await
            .map_err(|_| Unavailable::Unreachable("its answer was not measures".into()))?;
        let total = measures
            .iter()
            .find(|m| m.key == "active_users")
            .ok_or_else(|| Unavailable::Unreachable("it gave no active_users measure".into()))?;
        let count = parse_total(&total.total)
            .ok_or_else(|| Unavailable::Unreachable("its active users were not a count".into()))?;
        Ok(ActiveUsers {
            count,
            start_at,
            end_at: today,
        })
    }
}

/// Mastodon gives totals as strings ("123"); a number is taken too.
fn parse_total(v: &serde_json::Value) -> Option<i64> {
    let n = match v {
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok()?,
        serde_json::Value::Number(n) => n.as_i64()?,
        _ => return None,
    };
    (n >= 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_are_counts_as_strings_or_numbers() {
        assert_eq!(parse_total(&serde_json::json!("123")), Some(123));
        assert_eq!(parse_total(&serde_json::json!(7)), Some(7));
        assert_eq!(parse_total(&serde_json::json!("-1")), None);
        assert_eq!(parse_total(&serde_json::json!("12.5")), None);
        assert_eq!(parse_total(&serde_json::json!(null)), None);
    }
}
