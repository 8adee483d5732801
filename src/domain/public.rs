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

/// Mastodon sends a seed from 0 to 99; the same seed always picks the same
/// message variant.
pub fn campaign_variant(seed: u32, variants: usize) -> usize {
    if variants == 0 {
        0
    } else {
        (seed as usize) % variants
    }
}

/// The campaign id Mastodon caches under: the configured campaign name plus a
/// short hash of what it shows, so it stays the same until the campaign's
/// content changes.
pub fn campaign_id(name: &str, content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    format!("{name}-{}", &hex::encode(digest)[..8])
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
        assert_eq!(campaign_id("spring", "a"), campaign_id("spring", "a"));
        assert_ne!(campaign_id("spring", "a"), campaign_id("spring", "b"));
    }
}
