//! Verifying `Stripe-Signature` (`t=<unix time>,v1=<hex>,v1=<hex>,…`):
//! HMAC-SHA256 of `<t>.<payload>` under the endpoint's secret, compared in
//! constant time, against any of the `v1` values (Stripe sends several while
//! its own secret rolls) and any of our configured secrets (so ours can roll
//! too), with the timestamp at most five minutes from now either way.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::envelope::Event;

/// How far the signed timestamp may be from our clock, past or future:
/// Stripe's own default, which bounds how long a captured delivery replays.
const TOLERANCE_SECS: u64 = 300;

#[derive(Debug)]
pub enum Rejection {
    /// No secret matched, or the header is malformed.
    BadSignature,
    /// Signed, but more than five minutes away from now.
    Stale,
    /// Correctly signed, but not an event we can read. Stored anyway.
    Unreadable(String),
}

/// The verified event, or why it was refused.
pub fn verify(payload: &str, signature: &str, secrets: &[String]) -> Result<Event, Rejection> {
    verify_at(payload, signature, secrets, chrono::Utc::now().timestamp())
}

fn verify_at(
    payload: &str,
    signature: &str,
    secrets: &[String],
    now: i64,
) -> Result<Event, Rejection> {
    let header = Header::parse(signature).ok_or(Rejection::BadSignature)?;
    let signed = secrets.iter().any(|secret| {
        let expected = tag(secret, header.t, payload);
        // `any` stops at a match, which tells nothing about the secret.
        header
            .v1
            .iter()
            .any(|candidate| bool::from(expected.ct_eq(candidate)))
    });
    // The time is checked only once the signature is, so a forger learns nothing.
    if !signed {
        return Err(Rejection::BadSignature);
    }
    if now.abs_diff(header.t) > TOLERANCE_SECS {
        return Err(Rejection::Stale);
    }
    Event::parse(payload).map_err(Rejection::Unreadable)
}

/// A `Stripe-Signature` header for `payload`, as Stripe makes it: for tests,
/// benchmarks and tools that play Stripe.
pub fn sign(payload: &str, secret: &str, timestamp: i64) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(tag(secret, timestamp, payload))
    )
}

fn tag(secret: &str, timestamp: i64, payload: &str) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.finalize().into_bytes().into()
}

struct Header {
    t: i64,
    /// The `v1` values that are 32 bytes of hex; other values cannot match.
    v1: Vec<[u8; 32]>,
}

impl Header {
    /// `None` without exactly one readable `t` or without any `v1`. Other
    /// schemes (`v0`, test-mode extras) are ignored, as Stripe advises.
    fn parse(raw: &str) -> Option<Header> {
        let mut t = None;
        let mut v1 = Vec::new();
        for (key, value) in raw.split(',').filter_map(|p| p.trim().split_once('=')) {
            match key {
                "t" if t.is_none() => t = Some(value.parse().ok()?),
                "t" => return None,
                "v1" => {
                    let mut bytes = [0u8; 32];
                    if hex::decode_to_slice(value, &mut bytes).is_ok() {
                        v1.push(bytes);
                    }
                }
                _ => {}
            }
        }
        if v1.is_empty() {
            return None;
        }
        Some(Header { t: t?, v1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"evt_1","object":"event","api_version":"2026-09-30.endive","created":1700000000,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"test.unknown","data":{"object":{"object":"thing","id":"x"}}}"#;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// Computed apart from this code, with Python's `hmac` module:
    /// `hmac.new(b"whsec_test_secret", b"1700000000." + EVENT, sha256).hexdigest()`.
    const KNOWN_V1: &str = "a40f2d578e4dc795fb519ca06f2b7ea3c19258efd1084b2fe25e0c2f4019f8bd";

    #[test]
    fn a_header_made_by_stripes_documented_scheme_verifies() {
        let header = format!("t=1700000000,v1={KNOWN_V1}");
        assert_eq!(sign(EVENT, "whsec_test_secret", 1_700_000_000), header);
        let secrets = ["whsec_test_secret".to_owned()];
        let event = verify_at(EVENT, &header, &secrets, 1_700_000_000 + 60).unwrap();
        assert_eq!(event.id, "evt_1");
        assert_eq!(event.type_, "test.unknown");
        // Stripe's header may carry a v0 and spaces; they do not matter.
        let with_v0 = format!("t=1700000000, v1={KNOWN_V1}, v0={}", "ab".repeat(32));
        assert!(verify_at(EVENT, &with_v0, &secrets, 1_700_000_000).is_ok());
    }

    #[test]
    fn accepts_any_configured_secret_and_any_v1() {
        let header = sign(EVENT, "whsec_new", now());
        let secrets = ["whsec_old".to_owned(), "whsec_new".to_owned()];
        assert!(verify(EVENT, &header, &secrets).is_ok());
        let (t, v1) = header.split_once(",v1=").unwrap();
        let two = format!("{t},v1={},v1={v1}", "0".repeat(64));
        assert!(verify(EVENT, &two, &secrets).is_ok());
        let after_garbage = format!("{t},v1=nothex,v1={v1}");
        assert!(verify(EVENT, &after_garbage, &secrets).is_ok());
    }

    #[test]
    fn refuses_forged_tampered_and_stale_signatures() {
        let secrets = ["whsec_right".to_owned()];
        let forged = sign(EVENT, "whsec_wrong", now());
        assert!(matches!(
            verify(EVENT, &forged, &secrets),
            Err(Rejection::BadSignature)
        ));
        let good = sign(EVENT, "whsec_right", now());
        let tampered = EVENT.replace("evt_1", "evt_2");
        assert!(matches!(
            verify(&tampered, &good, &secrets),
            Err(Rejection::BadSignature)
        ));
        let old = sign(EVENT, "whsec_right", now() - 301);
        assert!(matches!(
            verify(EVENT, &old, &secrets),
            Err(Rejection::Stale)
        ));
        assert!(matches!(
            verify(EVENT, "garbage", &secrets),
            Err(Rejection::BadSignature)
        ));
        assert!(matches!(
            verify(EVENT, &good, &[]),
            Err(Rejection::BadSignature)
        ));
    }

    #[test]
    fn five_minutes_either_way_and_no_more() {
        let secrets = ["whsec_right".to_owned()];
        let t = 1_700_000_000;
        let header = sign(EVENT, "whsec_right", t);
        for (now, ok) in [
            (t - 301, false),
            (t - 300, true),
            (t, true),
            (t + 300, true),
            (t + 301, false),
        ] {
            let got = verify_at(EVENT, &header, &secrets, now);
            if ok {
                assert!(got.is_ok(), "{}", now - t);
            } else {
                assert!(matches!(got, Err(Rejection::Stale)), "{}", now - t);
            }
        }
        // A forged header is a bad signature, whatever its time.
        let forged = sign(EVENT, "whsec_wrong", t - 3600);
        assert!(matches!(
            verify_at(EVENT, &forged, &secrets, t),
            Err(Rejection::BadSignature)
        ));
        // Timestamps at the ends of i64 do not overflow.
        for t in [i64::MIN, i64::MAX] {
            let header = sign(EVENT, "whsec_right", t);
            assert!(matches!(
                verify_at(EVENT, &header, &secrets, 0),
                Err(Rejection::Stale)
            ));
        }
    }

    #[test]
    fn refuses_malformed_headers() {
        let secrets = ["whsec_right".to_owned()];
        let t = now();
        let good = sign(EVENT, "whsec_right", t);
        let v1 = good.split_once(",v1=").unwrap().1;
        for header in [
            String::new(),
            ",,,".into(),
            format!("v1={v1}"),
            format!("t=,v1={v1}"),
            format!("t=soon,v1={v1}"),
            format!("t={t}"),
            format!("t={t},v1="),
            format!("t={t},v1={}", &v1[..62]),
            format!("t={t},v0={v1}"),
            format!("t={t},t={t},v1={v1}"),
            format!("t={t},V1={v1}"),
        ] {
            assert!(
                matches!(
                    verify(EVENT, &header, &secrets),
                    Err(Rejection::BadSignature)
                ),
                "{header:?}"
            );
        }
    }

    #[test]
    fn a_signed_event_that_does_not_parse_is_unreadable() {
        let secrets = ["whsec_right".to_owned()];
        let payload =
            r#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{"id":"in_1"}}}"#;
        let header = sign(payload, "whsec_right", now());
        assert!(matches!(
            verify(payload, &header, &secrets),
            Err(Rejection::Unreadable(_))
        ));
    }
}
