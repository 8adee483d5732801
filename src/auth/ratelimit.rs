//! Login rate limits, per client address and per account, in memory.
//! Each replica limits on its own; with N replicas an attacker gets at most N
//! times the rate, still far below what a password guess needs.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::error::Error;

pub struct LoginLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
}

impl LoginLimiter {
    pub fn new(per_ip_per_minute: u32, per_account_per_minute: u32) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("non-zero"));
        LoginLimiter {
            per_ip: RateLimiter::keyed(quota(per_ip_per_minute)),
            per_account: RateLimiter::keyed(quota(per_account_per_minute)),
        }
    }

    /// Limits per hour rather than per minute (sponsor applications).
    pub fn per_hour(per_ip: u32, per_key: u32) -> Self {
        let quota = |n: u32| Quota::per_hour(NonZeroU32::new(n.max(1)).expect("non-zero"));
        LoginLimiter {
            per_ip: RateLimiter::keyed(quota(per_ip)),
            per_account: RateLimiter::keyed(quota(per_key)),
        }
    }

    /// Counts one attempt; refuses it if either limit is exhausted.
    pub fn check(&self, ip: IpAddr, account: &str) -> Result<(), Error> {
        let clock = DefaultClock::default();
        let refuse = |wait: Duration| Error::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        };
        self.per_ip
            .check_key(&ip)
            .map_err(|n| refuse(n.wait_time_from(clock.now())))?;
        self.per_account
            .check_key(&account.to_owned())
            .map_err(|n| refuse(n.wait_time_from(clock.now())))?;
        Ok(())
    }

    /// Forgets idle keys so the maps do not grow without bound.
    pub fn prune(&self) {
        self.per_ip.retain_recent();
        self.per_account.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_account_across_addresses() {
        let l = LoginLimiter::new(100, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check(a, "ann@example.org").is_ok());
        assert!(l.check(b, "ann@example.org").is_ok());
        assert!(matches!(
            l.check(a, "ann@example.org"),
            Err(Error::RateLimited { .. })
        ));
        assert!(l.check(a, "bob@example.org").is_ok());
    }

    #[test]
    fn limits_per_address_across_accounts() {
        let l = LoginLimiter::new(2, 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.check(a, "x1@example.org").is_ok());
        assert!(l.check(a, "x2@example.org").is_ok());
        assert!(l.check(a, "x3@example.org").is_err());
    }
}
