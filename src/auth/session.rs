//! Console sessions: a random id in an `HttpOnly` cookie, only its hash in
//! the database, an idle and an absolute lifetime, and a CSRF token that
//! every console form carries. Rules only; `store::sessions` keeps them.

use chrono::{DateTime, Duration, Utc};
use rand::RngCore;

/// How long a session lives: it ends `idle` after its last use, and
/// `absolute` after sign-in whatever happens.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
}

impl Lifetimes {
    pub fn from_settings(auth: &crate::config::AuthSettings) -> Self {
        Lifetimes {
            idle: Duration::minutes(auth.session_idle_minutes.max(1)),
            absolute: Duration::hours(auth.session_max_hours.max(1)),
        }
    }
}

/// Use is recorded at most this often, so reading pages is not a write
/// each time; the idle limit is precise to within it.
pub const TOUCH_EVERY: Duration = Duration::seconds(60);

pub fn needs_touch(last_seen: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now - last_seen >= TOUCH_EVERY
}

/// A fresh unguessable value (256 bits, hex): session ids, CSRF tokens.
pub fn mint() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

/// Whether a posted CSRF token is the session's, in constant time.
pub fn csrf_matches(expected: &str, posted: &str) -> bool {
    use subtle::ConstantTimeEq;
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(posted.as_bytes()))
}

/// The cookies the console sets. Over https the session cookie takes the
/// `__Host-` prefix, which browsers accept only with `Secure`, `Path=/`
/// and no `Domain`: no other site or subdomain can plant or read it.
#[derive(Debug, Clone, Copy)]
pub struct Cookies {
    pub secure: bool,
}

impl Cookies {
    pub fn session_name(self) -> &'static str {
        if self.secure {
            "__Host-patronage"
        } else {
            "patronage"
        }
    }

    /// Holds the login form's CSRF token before any session exists.
    pub fn login_name(self) -> &'static str {
        if self.secure {
            "__Host-patronage-login"
        } else {
            "patronage-login"
        }
    }

    pub const FLASH: &'static str = "patronage-flash";

    /// A `Set-Cookie` value; `max_age` 0 deletes the cookie.
    pub fn set(self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_over_https_are_host_only_and_secure() {
        let c = Cookies { secure: true };
        let set = c.set(c.session_name(), "abc", 60);
        assert_eq!(
            set,
            "__Host-patronage=abc; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let plain = Cookies { secure: false };
        assert!(
            !plain
                .set(plain.session_name(), "abc", 60)
                .contains("Secure")
        );
    }

    #[test]
    fn a_cookie_is_found_among_others_by_its_exact_name() {
        let h = "patronage-login=x; patronage=abc; other=1";
        assert_eq!(cookie(h, "patronage"), Some("abc"));
        assert_eq!(cookie(h, "patronage-login"), Some("x"));
        assert_eq!(cookie(h, "patron"), None);
    }

    #[test]
    fn csrf_tokens_must_match_exactly_and_exist() {
        assert!(csrf_matches("abc", "abc"));
        assert!(!csrf_matches("abc", "abd"));
        assert!(!csrf_matches("abc", ""));
        assert!(!csrf_matches("", ""));
    }

    #[test]
    fn use_is_recorded_once_a_minute() {
        let t = Utc::now();
        assert!(!needs_touch(t, t + Duration::seconds(59)));
        assert!(needs_touch(t, t + Duration::seconds(60)));
    }
}
