//! Outbound webhooks, the rules without I/O: the event types, the Standard
//! Webhooks signature (`v1,` + base64 HMAC-SHA256 over `id.timestamp.body`
//! with a `whsec_` secret), what an endpoint may be sent (the payload cut
//! to what it is trusted with), which addresses a delivery may reach, and
//! the retry schedule.

use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::error::{Error, Result};

/// What happened, as receivers see it in `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    SupporterCreated,
    PledgeStarted,
    PledgeChanged,
    PledgePastDue,
    PledgeCancelled,
    PaymentSucceeded,
    PaymentRefunded,
    SponsorPublished,
    SponsorUnpublished,
    GoalReached,
    /// An owner's test ping: sent to one endpoint, never subscribed to.
    Ping,
}

impl EventType {
    /// Every type an endpoint can subscribe to.
    pub const SUBSCRIBABLE: &'static [EventType] = &[
        EventType::SupporterCreated,
        EventType::PledgeStarted,
        EventType::PledgeChanged,
        EventType::PledgePastDue,
        EventType::PledgeCancelled,
        EventType::PaymentSucceeded,
        EventType::PaymentRefunded,
        EventType::SponsorPublished,
        EventType::SponsorUnpublished,
        EventType::GoalReached,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SupporterCreated => "supporter.created",
            EventType::PledgeStarted => "pledge.started",
            EventType::PledgeChanged => "pledge.changed",
            EventType::PledgePastDue => "pledge.past_due",
            EventType::PledgeCancelled => "pledge.cancelled",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentRefunded => "payment.refunded",
            EventType::SponsorPublished => "sponsor.published",
            EventType::SponsorUnpublished => "sponsor.unpublished",
            EventType::GoalReached => "goal.reached",
            EventType::Ping => "webhook.ping",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .iter()
            .chain(&[EventType::Ping])
            .copied()
            .find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An endpoint's chosen event types: at least one, each known, no repeats.
/// Stored space-separated.
pub fn parse_event_types(types: &[String]) -> Result<Vec<EventType>> {
    if types.is_empty() {
        return Err(Error::field(
            "event_types",
            "choose at least one event type",
        ));
    }
    let mut out = Vec::new();
    for t in types {
        let parsed = EventType::parse(t.trim())
            .filter(|t| *t != EventType::Ping)
            .ok_or_else(|| Error::field("event_types", format!("unknown event type {t:?}")))?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

pub fn join_event_types(types: &[EventType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn split_event_types(stored: &str) -> Vec<String> {
    stored.split_whitespace().map(str::to_owned).collect()
}

/// Whether an endpoint subscribed (`stored`, space-separated) to `kind`.
pub fn subscribed(stored: &str, kind: &str) -> bool {
    stored.split_whitespace().any(|t| t == kind)
}

/// A signing secret, `whsec_` + base64 of 32 random bytes; the HMAC key is
/// the decoded part.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The HMAC key of a `whsec_` secret (the prefix is optional, as in the
/// reference libraries).
pub fn secret_key(secret: &str) -> Result<Vec<u8>> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(encoded)
        .map_err(|_| Error::internal("a webhook secret is not base64"))
}

/// One `v1,<base64>` signature of `body` sent as message `id` at
/// `timestamp` (seconds).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String> {
    let key = secret_key(secret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(Error::internal_from)?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// The `webhook-signature` header: one signature per secret in force
/// (the current one, and the previous one while it rotates out),
/// space-separated.
pub fn signature_header(secrets: &[&str], id: &str, timestamp: i64, body: &str) -> Result<String> {
    let signatures = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Result<Vec<_>>>()?;
    Ok(signatures.join(" "))
}

/// The body sent for an event: `{"type", "timestamp", "data"}`, `data`
/// cut to what the endpoint may see (`redact`).
pub fn body(
    kind: &str,
    occurred_at: chrono::DateTime<chrono::Utc>,
    data: &Value,
    trusted: bool,
) -> String {
    let body = json!({
        "type": kind,
        "timestamp": occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": redact(data, trusted),
    });
    body.to_string()
}

/// What an endpoint that is not marked trusted is sent: no email address
/// ever; and for a patron who is not public (private or secret), neither
/// their name nor any amount of theirs (pledge or payment). A trusted
/// endpoint gets the event as recorded. The ids stay, so a receiver can
/// still tell events of one supporter apart.
pub fn redact(data: &Value, trusted: bool) -> Value {
    if trusted {
        return data.clone();
    }
    let mut data = data.clone();
    let hidden = data
        .pointer("/supporter/visibility")
        .and_then(Value::as_str)
        .is_some_and(|v| v != "public");
    if let Some(supporter) = data.get_mut("supporter").and_then(Value::as_object_mut) {
        supporter.remove("email");
        if hidden {
            supporter.insert("name".into(), Value::Null);
        }
    }
    if hidden {
        for object in ["pledge", "payment"] {
            if let Some(o) = data.get_mut(object).and_then(Value::as_object_mut)
                && o.contains_key("amount_minor")
            {
                o.insert("amount_minor".into(), Value::Null);
            }
        }
    }
    data
}

/// Why a delivery may not reach `ip`, unless private addresses are allowed:
/// loopback, link-local, private (RFC 1918, unique local, carrier-grade
/// NAT), unspecified, multicast, broadcast and documentation ranges.
pub fn forbidden_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
                Some("private")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if v4.is_multicast() || v4.is_broadcast() || o[0] >= 240 {
                Some("multicast or reserved")
            } else if v4.is_documentation() {
                Some("documentation")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("private")
            } else if v6.is_multicast() {
                Some("multicast or reserved")
            } else if first == 0x2001 && v6.segments()[1] == 0x0db8 {
                Some("documentation")
            } else {
                None
            }
        }
    }
}

/// An endpoint URL: absolute, https (http only when allowed), with a host
/// and no credentials in it.
pub fn parse_url(raw: &str, allow_http: bool) -> Result<url::Url> {
    let bad = |m: &str| Error::field("url", m);
    let url = url::Url::parse(raw.trim()).map_err(|_| bad("must be an absolute URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err(bad("must use https (plain http needs webhooks.allow_http)"));
        }
        _ => return Err(bad("must be an https URL")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if raw.len() > 2000 {
        return Err(bad("must be at most 2000 characters"));
    }
    Ok(url)
}

/// Tries before a delivery is given up: the first at once, then after
/// each delay of `RETRY_DELAYS`, about three days in all.
pub const MAX_ATTEMPTS: i32 = RETRY_DELAYS.len() as i32 + 1;

/// The waits between tries, in seconds: quick at first (a receiver that
/// restarts), then hours apart, 3 days and 2 hours in total.
pub const RETRY_DELAYS: [i64; 15] = [
    5, 30, 120, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 43200, 43200, 43200, 43200,
];

/// The wait before try `attempts + 1`.
pub fn retry_delay(attempts: i32) -> chrono::Duration {
    let i = (attempts.max(1) as usize - 1).min(RETRY_DELAYS.len() - 1);
    chrono::Duration::seconds(RETRY_DELAYS[i])
}

/// A response body kept in the delivery log: at most `max` bytes, cut at a
/// character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks reference libraries' own test vector
    /// (libraries/javascript/src/webhook.test.ts, "sign function works").
    #[test]
    fn signs_the_specs_test_vector() {
        let sig = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        )
        .unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_rotating_secret_signs_twice() {
        let a = new_secret();
        let b = new_secret();
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert_eq!(secret_key(&a).unwrap().len(), 32);
        let header = signature_header(&[&a, &b], "msg_1", 1, "{}").unwrap();
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], sign(&a, "msg_1", 1, "{}").unwrap());
        assert_eq!(parts[1], sign(&b, "msg_1", 1, "{}").unwrap());
    }

    #[test]
    fn untrusted_endpoints_get_no_email_and_no_hidden_amounts() {
        let data = json!({
            "supporter": {"id": 1, "name": "Ann", "email": "ann@example.org", "visibility": "private"},
            "pledge": {"id": 2, "amount_minor": 500, "currency": "EUR"},
        });
        let cut = redact(&data, false);
        assert!(cut["supporter"].get("email").is_none());
        assert!(cut["supporter"]["name"].is_null());
        assert!(cut["pledge"]["amount_minor"].is_null());
        assert_eq!(cut["pledge"]["currency"], "EUR");
        assert_eq!(redact(&data, true), data);

        let public = json!({"supporter": {"name": "Bo", "email": "b@x.org", "visibility": "public"},
            "payment": {"amount_minor": 300}});
        let cut = redact(&public, false);
        assert_eq!(cut["supporter"]["name"], "Bo");
        assert!(cut["supporter"].get("email").is_none());
        assert_eq!(cut["payment"]["amount_minor"], 300);
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "224.0.0.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::",
            "ff02::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(
                forbidden_address(ip.parse().unwrap()).is_some(),
                "{ip} is refused"
            );
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert_eq!(forbidden_address(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn urls_need_https_unless_http_is_allowed() {
        assert!(parse_url("https://hooks.example.org/x", false).is_ok());
        assert!(parse_url("http://hooks.example.org/x", false).is_err());
        assert!(parse_url("http://hooks.example.org/x", true).is_ok());
        assert!(parse_url("ftp://hooks.example.org/x", true).is_err());
        assert!(parse_url("https://u:p@hooks.example.org/x", false).is_err());
        assert!(parse_url("/relative", false).is_err());
    }

    #[test]
    fn retries_last_about_three_days() {
        let total: i64 = (1..MAX_ATTEMPTS)
            .map(|a| retry_delay(a).num_seconds())
            .sum();
        assert!((70 * 3600..80 * 3600).contains(&total), "{total}");
        assert_eq!(retry_delay(1).num_seconds(), 5);
        assert_eq!(retry_delay(1000).num_seconds(), 43200);
    }

    #[test]
    fn event_types_parse_and_round_trip() {
        let t = parse_event_types(&["pledge.started".into(), "goal.reached".into()]).unwrap();
        let stored = join_event_types(&t);
        assert!(subscribed(&stored, "goal.reached"));
        assert!(!subscribed(&stored, "pledge.changed"));
        assert!(parse_event_types(&[]).is_err());
        assert!(parse_event_types(&["webhook.ping".into()]).is_err());
        assert!(parse_event_types(&["nope".into()]).is_err());
    }
}
