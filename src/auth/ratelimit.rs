//! Login rate limits, in memory, with three buckets:
//!
//! - per client address, whatever the account;
//! - per account and client: a guesser on one address locks out only that
//!   address, so the owner can still sign in from their own;
//! - per account over every client, much higher: it bounds a guesser with
//!   many addresses, at the price that such a guesser can lock the owner out
//!   while it lasts.
//!
//! We chose this over a second factor after failures because patronage has
//! none to offer. IPv6 clients are counted per /64, which one host usually
//! owns whole. Each replica limits on its own; with N replicas an attacker
//! gets at most N times the rate, still far below what a password guess needs.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::error::Error;

/// Attempts allowed per minute in each bucket.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_client: u32,
    pub per_account_per_client: u32,
    pub per_account: u32,
}

pub struct LoginLimiter {
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    per_account_client: DefaultKeyedRateLimiter<(String, IpAddr)>,
    per_account: DefaultKeyedRateLimiter<String>,
}

impl LoginLimiter {
    pub fn new(limits: Limits) -> Self {
        Self::with_period(limits, Quota::per_minute)
    }

    fn with_period(limits: Limits, period: fn(NonZeroU32) -> Quota) -> Self {
        let quota = |n: u32| period(NonZeroU32::new(n.max(1)).expect("non-zero"));
        LoginLimiter {
            per_client: RateLimiter::keyed(quota(limits.per_client)),
            per_account_client: RateLimiter::keyed(quota(limits.per_account_per_client)),
            per_account: RateLimiter::keyed(quota(limits.per_account)),
        }
    }

    /// The same buckets, counted per hour (sponsor applications).
    pub fn per_hour(limits: Limits) -> Self {
        Self::with_period(limits, Quota::per_hour)
    }

    /// Counts one attempt on `account`; refuses it if a bucket is empty. The
    /// account-wide bucket is counted last, so a client already refused for
    /// this account cannot drain it.
    pub fn check(&self, ip: IpAddr, account: &str) -> Result<(), Error> {
        let client = client_key(ip);
        self.check_client(ip)?;
        self.per_account_client
            .check_key(&(account.to_owned(), client))
            .map_err(|n| refuse(n.wait_time_from(DefaultClock::default().now())))?;
        self.per_account
            .check_key(&account.to_owned())
            .map_err(|n| refuse(n.wait_time_from(DefaultClock::default().now())))?;
        Ok(())
    }

    /// Counts one attempt from `ip` that names no account.
    pub fn check_client(&self, ip: IpAddr) -> Result<(), Error> {
        self.per_client
            .check_key(&client_key(ip))
            .map_err(|n| refuse(n.wait_time_from(DefaultClock::default().now())))
    }

    /// Forgets idle keys so the maps do not grow without bound.
    pub fn prune(&self) {
        self.per_client.retain_recent();
        self.per_account_client.retain_recent();
        self.per_account.retain_recent();
    }
}

fn refuse(wait: Duration) -> Error {
    Error::RateLimited {
        retry_after_secs: wait.as_secs().max(1),
    }
}

/// The address a limit counts: IPv4 as is, IPv6 by its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_client: u32, per_account_per_client: u32, per_account: u32) -> LoginLimiter {
        LoginLimiter::new(Limits {
            per_client,
            per_account_per_client,
            per_account,
        })
    }

    #[test]
    fn a_guesser_locks_out_only_its_own_address() {
        let l = limiter(100, 2, 10);
        let attacker: IpAddr = "10.0.0.1".parse().unwrap();
        let owner: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..2 {
            assert!(l.check(attacker, "ann@example.org").is_ok());
        }
        for _ in 0..20 {
            assert!(matches!(
                l.check(attacker, "ann@example.org"),
                Err(Error::RateLimited { .. })
            ));
        }
        assert!(l.check(owner, "ann@example.org").is_ok());
    }

    #[test]
    fn many_addresses_together_meet_the_account_limit() {
        let l = limiter(100, 2, 3);
        for i in 1..=3 {
            let ip: IpAddr = format!("10.0.0.{i}").parse().unwrap();
            assert!(l.check(ip, "ann@example.org").is_ok());
        }
        let fourth: IpAddr = "10.0.0.4".parse().unwrap();
        assert!(l.check(fourth, "ann@example.org").is_err());
        assert!(l.check(fourth, "bob@example.org").is_ok());
    }

    #[test]
    fn limits_per_address_across_accounts() {
        let l = limiter(2, 100, 100);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(l.check(a, "x1@example.org").is_ok());
        assert!(l.check(a, "x2@example.org").is_ok());
        assert!(l.check(a, "x3@example.org").is_err());
    }

    #[test]
    fn ipv6_clients_count_per_64() {
        let l = limiter(2, 100, 100);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check_client(a).is_ok());
        assert!(l.check_client(b).is_ok());
        assert!(l.check_client(a).is_err());
        assert!(l.check_client(other).is_ok());
    }
}
