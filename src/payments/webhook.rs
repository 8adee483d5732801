//! Verifying `Stripe-Signature`: HMAC-SHA256 over `t.payload`, compared in
//! constant time (async-stripe uses `hmac`'s `verify_slice`), any of several
//! `v1` values, a 5-minute tolerance, and any of several configured secrets
//! so they can be rotated.

use stripe_webhook::{Event, Webhook, WebhookError};

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
    let mut stale = false;
    for secret in secrets {
        match Webhook::construct_event(payload, signature, secret) {
            Ok(event) => return Ok(event),
            Err(WebhookError::BadSignature | WebhookError::BadKey) => continue,
            Err(WebhookError::BadTimestamp(_)) => stale = true,
            Err(WebhookError::BadParse(reason)) => return Err(Rejection::Unreadable(reason)),
            Err(_) => return Err(Rejection::BadSignature),
        }
    }
    Err(if stale {
        Rejection::Stale
    } else {
        Rejection::BadSignature
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":"evt_1","object":"event","api_version":"2026-09-30.endive","created":1700000000,"livemode":false,"pending_webhooks":1,"request":{"id":null,"idempotency_key":null},"type":"test.unknown","data":{"object":{"object":"thing","id":"x"}}}"#;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn accepts_any_configured_secret_and_any_v1() {
        let header = Webhook::generate_test_header(EVENT, "whsec_new", Some(now()));
        let secrets = ["whsec_old".to_owned(), "whsec_new".to_owned()];
        assert!(verify(EVENT, &header, &secrets).is_ok());
        let (t, v1) = header.split_once(",v1=").unwrap();
        let two = format!("{t},v1={},v1={v1}", "0".repeat(64));
        assert!(verify(EVENT, &two, &secrets).is_ok());
    }

    #[test]
    fn refuses_forged_tampered_and_stale_signatures() {
        let secrets = ["whsec_right".to_owned()];
        let forged = Webhook::generate_test_header(EVENT, "whsec_wrong", Some(now()));
        assert!(matches!(
            verify(EVENT, &forged, &secrets),
            Err(Rejection::BadSignature)
        ));
        let good = Webhook::generate_test_header(EVENT, "whsec_right", Some(now()));
        let tampered = EVENT.replace("evt_1", "evt_2");
        assert!(matches!(
            verify(&tampered, &good, &secrets),
            Err(Rejection::BadSignature)
        ));
        let old = Webhook::generate_test_header(EVENT, "whsec_right", Some(now() - 301));
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
}
