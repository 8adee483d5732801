//! Fediverse rules without I/O: which instance URL a patron may type, which
//! profile URL may be linked from a public page, which accounts the role
//! sync can name in a `tootctl` line, and how posts are seen.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

/// An instance a patron typed, made into `https://host[:port]`. Refused:
/// another scheme, credentials, a path, query or fragment, a host without
/// a dot, and an address that is not public (loopback, private, link-local,
/// ...), which would let a patron make us call into our own network. A
/// name that resolves to such an address is refused when it is resolved
/// (`is_public_ip`).
pub fn parse_instance_url(raw: &str) -> Result<String, FieldError> {
    let bad = |m: &str| FieldError::new("instance", m);
    let raw = raw.trim().trim_end_matches('/');
    if raw.is_empty() {
        return Err(bad("type your instance, e.g. mastodon.social"));
    }
    if raw.len() > 255 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("is not an instance address"));
    }
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("https://{raw}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|_| bad("is not an instance address"))?;
    if url.scheme() != "https" {
        return Err(bad("must be an https address"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "must be the instance's address only, e.g. mastodon.social",
        ));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            if !d.contains('.') || d.ends_with(".localhost") || d.ends_with(".local") {
                return Err(bad("is not a public instance"));
            }
            d
        }
        Some(url::Host::Ipv4(ip)) if is_public_ip(IpAddr::V4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) if is_public_ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        _ => return Err(bad("is not a public instance")),
    };
    Ok(match url.port() {
        Some(port) => format!("https://{host}:{port}"),
        None => format!("https://{host}"),
    })
}

/// Whether an address is on the public internet (not loopback, private,
/// link-local, shared, documentation, multicast, unspecified...).
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// The host of an instance URL, lower-cased.
pub fn host_of(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
}

/// A linked account's profile link, kept only when it is https, without
/// credentials, and on the account's own host or the instance's.
pub fn profile_url(raw: &str, acct: &str, instance_url: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let acct_host = acct.rsplit_once('@').map(|(_, h)| h.to_ascii_lowercase());
    let ok = acct_host.as_deref() == Some(host.as_str())
        || host_of(instance_url).as_deref() == Some(host.as_str());
    ok.then(|| url.to_string())
}

/// Whether a full `user@host` is well formed: a Mastodon user name and a
/// host name.
pub fn is_full_acct(acct: &str) -> bool {
    let Some((user, host)) = acct.split_once('@') else {
        return false;
    };
    is_username(user)
        && !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
}

/// A Mastodon user name: letters, digits and underscores (also the only
/// thing the role sync writes into a shell line).
pub fn is_username(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && user.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The user name of an account on `instance_host`, if `acct` is local there
/// and its name is safe to write into a command line. Remote accounts
/// cannot be given a role at this instance.
pub fn local_username<'a>(acct: &'a str, instance_host: &str) -> Option<&'a str> {
    let (user, host) = acct.split_once('@')?;
    (host.eq_ignore_ascii_case(instance_host) && is_username(user)).then_some(user)
}

/// A role name for `tootctl`: letters, digits, spaces, dashes and
/// underscores only.
pub fn is_role_name(role: &str) -> bool {
    !role.trim().is_empty()
        && role.len() <= 64
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _-".contains(&b))
}

/// The `tootctl` line for one change: the role given to an account that
/// became an active supporter, removed from one that stopped.
pub fn tootctl_line(user: &str, role: &str, active: bool) -> String {
    if active {
        format!("tootctl accounts modify {user} --role '{role}'")
    } else {
        format!("tootctl accounts modify {user} --remove-role")
    }
}

/// Who sees the bot's posts (Mastodon's `visibility`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostVisibility {
    Public,
    Unlisted,
    /// Followers only.
    Private,
}

impl PostVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            PostVisibility::Public => "public",
            PostVisibility::Unlisted => "unlisted",
            PostVisibility::Private => "private",
        }
    }
}

/// A post the bot makes: what it is about. Its key makes it one post,
/// however often it is queued or retried (the task's key, the posts table's
/// key and Mastodon's `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Post {
    /// A sponsor was published on `on`.
    Sponsor {
        sponsor_id: i64,
        on: chrono::NaiveDate,
    },
    /// A linked patron who agreed to be mentioned started supporting.
    Patron { supporter_id: i64 },
    /// The monthly goal was reached in `month` (YYYY-MM).
    Goal {
        month: String,
        goal_minor: i64,
        currency: String,
    },
    /// The summary of `month` (YYYY-MM).
    Monthly { month: String },
}

impl Post {
    /// The setting (`mastodon.posts`) and template name of this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Post::Sponsor { .. } => "sponsor",
            Post::Patron { .. } => "patron",
            Post::Goal { .. } => "goal",
            Post::Monthly { .. } => "monthly",
        }
    }

    pub fn key(&self) -> String {
        match self {
            Post::Sponsor { sponsor_id, on } => format!("sponsor:{sponsor_id}:{on}"),
            // A patron is thanked once.
            Post::Patron { supporter_id } => format!("patron:{supporter_id}"),
            Post::Goal {
                month,
                goal_minor,
                currency,
            } => {
                format!("goal:{month}:{goal_minor}:{currency}")
            }
            Post::Monthly { month } => format!("monthly:{month}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_instances_are_public_https_hosts_only() {
        assert_eq!(
            parse_instance_url(" Mastodon.Social/ ").unwrap(),
            "https://mastodon.social"
        );
        assert_eq!(
            parse_instance_url("https://example.social:8443").unwrap(),
            "https://example.social:8443"
        );
        for bad in [
            "",
            "http://example.social",
            "https://user:pw@example.social",
            "https://u@example.social",
            "https://example.social/path",
            "https://example.social/?q=1",
            "https://localhost",
            "https://127.0.0.1",
            "https://10.0.0.1",
            "https://169.254.169.254",
            "https://[::1]",
            "https://[fd00::1]",
            "https://printer.local",
            "ftp://example.social",
            "javascript:alert(1)",
            "exa mple.social",
        ] {
            assert!(parse_instance_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn profiles_must_be_https_on_the_accounts_host_or_the_instance() {
        let i = "https://example.social";
        assert!(profile_url("https://other.example/@ann", "ann@other.example", i).is_some());
        assert!(profile_url("https://example.social/@ann", "ann@other.example", i).is_some());
        assert!(profile_url("https://evil.example/@ann", "ann@other.example", i).is_none());
        assert!(profile_url("http://other.example/@ann", "ann@other.example", i).is_none());
        assert!(profile_url("javascript:alert(1)", "ann@other.example", i).is_none());
        assert!(profile_url("https://x@other.example/@ann", "ann@other.example", i).is_none());
    }

    #[test]
    fn only_local_safe_usernames_get_tootctl_lines() {
        assert_eq!(
            local_username("ann_1@example.social", "example.social"),
            Some("ann_1")
        );
        assert_eq!(local_username("ann@other.example", "example.social"), None);
        assert_eq!(
            local_username("a;rm -rf@example.social", "example.social"),
            None
        );
        assert_eq!(
            local_username("$(id)@example.social", "example.social"),
            None
        );
        assert_eq!(
            tootctl_line("ann", "Patron", true),
            "tootctl accounts modify ann --role 'Patron'"
        );
        assert_eq!(
            tootctl_line("ann", "Patron", false),
            "tootctl accounts modify ann --remove-role"
        );
        assert!(is_role_name("Patron tier"));
        assert!(!is_role_name("x'; rm"));
    }

    #[test]
    fn public_addresses_only() {
        for ip in ["8.8.8.8", "2a00:1450::1"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }
}
