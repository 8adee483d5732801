//! The optional second factor: TOTP codes (RFC 6238 as authenticator apps
//! expect: SHA-1, six digits, 30-second steps, one step of clock skew each
//! way), each accepted once, and single-use recovery codes. Rules only;
//! `store::admins` keeps the secrets.

use rand::RngCore;
use totp_rs::{Builder, Secret, Totp};

use crate::error::{Error, Result};

/// A fresh secret: 160 random bits, as base32 (what apps are given).
pub fn new_secret() -> String {
    let mut raw = [0u8; 20];
    rand::rng().fill_bytes(&mut raw);
    Secret::from(raw).to_base32()
}

fn totp(secret: &str, account: &str) -> Result<Totp> {
    let secret = Secret::try_from_base32(secret)
        .map_err(|e| Error::internal(format!("bad TOTP secret: {e:?}")))?;
    Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some("patronage"))
        .build()
        .map_err(|e| Error::internal(format!("TOTP: {e:?}")))
}

/// The `otpauth://` link an authenticator app reads (from the QR code).
pub fn otpauth_url(secret: &str, account: &str) -> Result<String> {
    totp(secret, account)?
        .to_url()
        .map_err(|e| Error::internal(format!("TOTP: {e:?}")))
}

/// The time step `code` matches at `now` (seconds since the epoch), if it
/// matches one later than `last_step`: a code, once used, never works again.
pub fn accept(secret: &str, code: &str, last_step: Option<i64>, now: u64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let step = totp(secret, "").ok()?.check(&code, now)? as i64;
    (last_step.is_none_or(|last| step > last)).then_some(step)
}

/// The code for `now` (tests and examples play the authenticator app).
pub fn code_at(secret: &str, now: u64) -> Result<String> {
    Ok(totp(secret, "")?.generate(now).to_string())
}

/// Ten recovery codes, each of 60 random bits, like "k3vq-9xhd-2mfa".
pub fn recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..10)
        .map(|_| {
            let mut raw = [0u8; 12];
            rand::rng().fill_bytes(&mut raw);
            let chars: String = raw
                .iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..])
        })
        .collect()
}

/// A recovery code as stored (hashed): spaces, dashes and case ignored.
pub fn recovery_hash(code: &str) -> String {
    let plain: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    super::hash_token(&plain)
}

/// A QR code for `text` as inline SVG: dark modules are `<rect>`s coloured by
/// the stylesheet (no inline style under the console's CSP), on a white
/// quiet zone so phones read it in the dark theme too.
pub fn qr_svg(text: &str) -> Result<String> {
    use qrcodegen::{QrCode, QrCodeEcc};
    use std::fmt::Write;
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|e| Error::internal(format!("QR: {e:?}")))?;
    let border = 4;
    let size = qr.size() + 2 * border;
    let mut svg = format!(
        r#"<svg class="qr" viewBox="0 0 {size} {size}" role="img" aria-label="QR code for your authenticator app" xmlns="http://www.w3.org/2000/svg"><rect class="qr-bg" width="{size}" height="{size}"/>"#
    );
    for y in 0..qr.size() {
        for x in 0..qr.size() {
            if qr.get_module(x, y) {
                let _ = write!(
                    svg,
                    r#"<rect class="qr-on" x="{}" y="{}" width="1" height="1"/>"#,
                    x + border,
                    y + border
                );
            }
        }
    }
    svg.push_str("</svg>");
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_in_its_step_and_the_next_but_only_once() {
        let secret = new_secret();
        let t = 1_800_000_000;
        let code = code_at(&secret, t).unwrap();
        let step = accept(&secret, &code, None, t).expect("the current code");
        assert_eq!(
            accept(&secret, &code, None, t + 30),
            Some(step),
            "a step of skew"
        );
        assert_eq!(accept(&secret, &code, Some(step), t), None, "never twice");
        assert_eq!(accept(&secret, &code, None, t + 120), None, "stale");
        assert_eq!(accept(&secret, "000000x", None, t), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_loosely() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), 10);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), 10);
        let c = &codes[0];
        assert_eq!(
            recovery_hash(c),
            recovery_hash(&c.to_uppercase().replace('-', " "))
        );
    }

    #[test]
    fn the_qr_code_draws_with_classes_only() {
        let svg = qr_svg("otpauth://totp/patronage:a@b?secret=ABC").unwrap();
        assert!(svg.contains("class=\"qr-on\"") && !svg.contains("style="));
    }
}
