//! Rules of the public views that need no I/O: amounts in main units for
//! funding.json, and the Mastodon donation campaign's variant and id.

use sha2::{Digest, Sha256};

/// An amount in the currency's main unit as a JSON number, exactly: the
/// integer part and the fraction are split with integer arithmetic, and the
/// decimal text ("12.5") is what is parsed, so no float arithmetic ever
/// touches the amount. (serde_json prints the shortest text that reads back
/// as the same number, which is this decimal text again.)
pub fn major_units(minor: i64, exponent: u32) -> serde_json::Number {
    let scale = 10i64.pow(exponent);
    let (whole, frac) = (minor / scale, (minor % scale).abs());
    if frac == 0 {
        return serde_json::Number::from(whole);
    }
    let sign = if minor < 0 && whole == 0 { "-" } else { "" };
    let text = format!("{sign}{whole}.{frac:0width$}", width = exponent as usize);
    let text = text.trim_end_matches('0');
    let value: f64 = text.parse().expect("a decimal number");
    serde_json::Number::from_f64(value).expect("finite")
}

/// A person's decimal amount ("5", "5.5", "5,50") in minor units, exactly;
/// None if it is not a positive amount with at most `exponent` decimals.
pub fn minor_units(text: &str, exponent: u32) -> Option<i64> {
    let text = text.trim().replace(',', ".");
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text.as_str(), ""),
    };
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > exponent as usize
        || whole.len() > 12
    {
        return None;
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac_value: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let frac_scaled = frac_value * 10i64.pow(exponent - frac.len() as u32);
    let minor = whole
        .checked_mul(10i64.pow(exponent))?
        .checked_add(frac_scaled)?;
    (minor > 0).then_some(minor)
}

/// An amount in hundredths of the main unit, the unit of Mastodon's
/// donation campaign whatever the currency (its web form divides by 100;
/// its Android app writes minimums as `50_00` even for JPY). Exact for
/// currencies with 0 to 2 decimals. With 3 (KWD, BHD…) the amount is rounded
/// half up to the nearest hundredth: Mastodon cannot show or send back the
/// thousandth, and an amount a person picks must still be one we can
/// charge (1.234 KWD is offered as 1.23). None on overflow.
pub fn hundredths(minor: i64, exponent: u32) -> Option<i64> {
    if exponent <= 2 {
        minor.checked_mul(10i64.checked_pow(2 - exponent)?)
    } else {
        let scale = 10i64.checked_pow(exponent - 2)?;
        Some(minor.checked_add(scale / 2)?.div_euclid(scale))
    }
}

/// Hundredths of the main unit (what Mastodon's apps send) in minor units;
/// exact for 2 or more decimals, rounded half up below (5050 hundredths of
/// a yen is ¥51). None on overflow.
pub fn from_hundredths(hundredths: i64, exponent: u32) -> Option<i64> {
    if exponent >= 2 {
        hundredths.checked_mul(10i64.checked_pow(exponent - 2)?)
    } else {
        let scale = 10i64.checked_pow(2 - exponent)?;
        Some(hundredths.checked_add(scale / 2)?.div_euclid(scale))
    }
}

/// How often a person gives, as Mastodon's apps name it in `donation_url`'s
/// `frequency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    OneTime,
    Monthly,
    Yearly,
}

impl Frequency {
    pub fn parse(text: &str) -> Option<Frequency> {
        match text.trim() {
            "one_time" => Some(Frequency::OneTime),
            "monthly" => Some(Frequency::Monthly),
            "yearly" => Some(Frequency::Yearly),
            _ => None,
        }
    }
}

/// Whether `url` is an absolute http(s) URL on one of `origins` (same
/// scheme, host and port). Only such URLs are taken as places to return to
/// after checkout, so a link to our support page can never send a payer
/// on to someone else's site.
pub fn on_origin(url: &str, origins: &[&str]) -> bool {
    let Ok(parsed) = url::Url::parse(url.trim()) else {
        return false;
    };
    if url.len() > 2000 || !matches!(parsed.scheme(), "http" | "https") {
        return false;
    }
    let origin = parsed.origin();
    origins
        .iter()
        .filter_map(|o| url::Url::parse(o.trim()).ok())
        .filter(|o| matches!(o.scheme(), "http" | "https"))
        .any(|o| o.origin() == origin)
}

/// Mastodon sends a seed from 0 to 99; the same seed always picks the same
/// message variant.
pub fn campaign_variant(seed: u32, variants: usize) -> usize {
    if variants == 0 {
        0
    } else {
        (seed as usize) % variants
    }
}

/// The id of one message variant of the campaign. Mastodon caches a
/// campaign under its id and locale for an hour, and a dismissed banner
/// stays dismissed by id; so each variant has its own id (the locale and
/// the variant's place), and a short hash of what that variant shows, so
/// the id changes when, and only when, its own content does.
pub fn campaign_id(name: &str, locale: &str, variant: usize, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    format!("{name}-{locale}-{variant}-{}", &hex::encode(digest)[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_become_exact_main_units() {
        assert_eq!(major_units(300, 2).to_string(), "3");
        assert_eq!(major_units(350, 2).to_string(), "3.5");
        assert_eq!(major_units(1, 2).to_string(), "0.01");
        assert_eq!(major_units(-5, 2).to_string(), "-0.05");
        assert_eq!(major_units(-1250, 2).to_string(), "-12.5");
        assert_eq!(major_units(1500, 0).to_string(), "1500");
        assert_eq!(major_units(1234, 3).to_string(), "1.234");
        assert_eq!(major_units(1_561_000, 2).to_string(), "15610");
    }

    #[test]
    fn typed_amounts_become_minor_units() {
        assert_eq!(minor_units("5", 2), Some(500));
        assert_eq!(minor_units("5.5", 2), Some(550));
        assert_eq!(minor_units(" 5,05 ", 2), Some(505));
        assert_eq!(minor_units(".5", 2), Some(50));
        assert_eq!(minor_units("1500", 0), Some(1500));
        for bad in ["", "0", "-5", "5.555", "1e3", "abc", "."] {
            assert!(minor_units(bad, 2).is_none(), "{bad}");
        }
    }

    #[test]
    fn seeds_pick_variants_deterministically() {
        assert_eq!(campaign_variant(7, 2), 1);
        assert_eq!(campaign_variant(7, 2), campaign_variant(7, 2));
        assert_eq!(campaign_variant(99, 0), 0);
        assert_eq!(
            campaign_id("spring", "en", 0, "a"),
            campaign_id("spring", "en", 0, "a")
        );
        assert_ne!(
            campaign_id("spring", "en", 0, "a"),
            campaign_id("spring", "en", 0, "b")
        );
        assert_ne!(
            campaign_id("spring", "en", 0, "a"),
            campaign_id("spring", "en", 1, "a")
        );
        assert!(campaign_id("spring", "pt-BR", 1, "a").starts_with("spring-pt-BR-1-"));
    }

    #[test]
    fn only_our_own_origins_are_places_to_return_to() {
        let ours = [
            "https://fund.example.social",
            "https://example.social/about",
        ];
        assert!(on_origin("https://example.social/donations/ok?x=1", &ours));
        assert!(on_origin("https://fund.example.social/thanks", &ours));
        for other in [
            "https://evil.example/ok",
            "http://example.social/ok",
            "https://example.social:8443/ok",
            "https://example.social.evil.example/ok",
            "javascript:alert(1)",
            "//example.social/ok",
            "/relative",
            "",
        ] {
            assert!(!on_origin(other, &ours), "{other}");
        }
        assert!(!on_origin("https://example.social/", &[""]));
    }

    #[test]
    fn mastodon_amounts_are_hundredths_of_the_main_unit() {
        // EUR: cents are hundredths already.
        assert_eq!(hundredths(500, 2), Some(500));
        // JPY: ¥500 is 50000 hundredths.
        assert_eq!(hundredths(500, 0), Some(50_000));
        // KWD: 1.234 is 123.4 hundredths, offered as 1.23; 1.235 as 1.24.
        assert_eq!(hundredths(1234, 3), Some(123));
        assert_eq!(hundredths(1235, 3), Some(124));
        assert_eq!(hundredths(1500, 3), Some(150));
        assert_eq!(hundredths(i64::MAX, 0), None);
        // And back.
        assert_eq!(from_hundredths(500, 2), Some(500));
        assert_eq!(from_hundredths(50_000, 0), Some(500));
        assert_eq!(from_hundredths(5050, 0), Some(51));
        assert_eq!(from_hundredths(123, 3), Some(1230));
        assert_eq!(from_hundredths(i64::MAX, 3), None);
    }
}
