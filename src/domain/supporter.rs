//! Supporters: patrons (people) and sponsors (companies).

use super::{Checks, text, text_enum};
use crate::error::{FieldError, Result};

text_enum!(
    /// How a patron appears in public: by name, counted but unnamed in public
    /// lists (private), or counted only (secret).
    Visibility { Public => "public", Private => "private", Secret => "secret" }
);

text_enum!(
    /// A sponsor is public only once approved (and paid).
    SponsorStatus { Pending => "pending", Approved => "approved", Rejected => "rejected" }
);

text_enum!(
    SupporterKind { Patron => "patron", Sponsor => "sponsor" }
);

/// A syntactically valid address, with the form used for lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub address: String,
    pub normalized: String,
}

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let address = raw.trim();
        if address.len() > 254 {
            return Err(FieldError::new(field, "must be at most 254 characters"));
        }
        // Plain addresses only: no display names, comments or quoting, and
        // nothing that could split a mail header.
        let plain = |c: char| {
            !(c.is_whitespace()
                || c.is_control()
                || super::is_bidi_control(c)
                || "<>\"(),;:\\[]".contains(c))
        };
        if !address.chars().all(plain) {
            return Err(FieldError::new(field, "must be an email address"));
        }
        let parsed: email_address::EmailAddress = address
            .parse()
            .map_err(|_| FieldError::new(field, "must be an email address"))?;
        // Display names ("Ann <a@b>") and IP-literal domains are not addresses
        // we can mail reliably.
        if parsed.as_str() != address
            || parsed.domain().starts_with('[')
            || !parsed.domain().contains('.')
        {
            return Err(FieldError::new(field, "must be an email address"));
        }
        Ok(Email {
            address: address.to_owned(),
            normalized: address.to_lowercase(),
        })
    }
}

/// A public website link: http(s) only, no credentials, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteUrl(pub String);

impl WebsiteUrl {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.len() > 2048 {
            return Err(FieldError::new(field, "must be at most 2048 characters"));
        }
        let url = url::Url::parse(raw)
            .map_err(|_| FieldError::new(field, "must be an absolute http or https URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FieldError::new(field, "must use http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FieldError::new(field, "must not contain credentials"));
        }
        match url.host_str() {
            Some(host) if host.contains('.') || host == "localhost" => {}
            _ => return Err(FieldError::new(field, "must name a host")),
        }
        Ok(WebsiteUrl(url.to_string()))
    }

    pub fn host(&self) -> String {
        url::Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct PatronDraft {
    pub email: Email,
    pub display_name: String,
    pub visibility: Visibility,
}

impl PatronDraft {
    pub fn parse(email: &str, display_name: &str, visibility: Visibility) -> Result<Self> {
        let mut checks = Checks::new();
        let email = checks.take(Email::parse("email", email));
        let display_name = checks.take(text("display_name", display_name, 1, 100, false));
        checks.finish()?;
        Ok(PatronDraft {
            email: email.expect("checked"),
            display_name: display_name.expect("checked"),
            visibility,
        })
    }
}

#[derive(Debug, Clone)]
pub struct SponsorDraft {
    pub company_name: String,
    pub website_url: WebsiteUrl,
    pub contact_email: Email,
    pub tier_id: i64,
    pub paid_through: Option<chrono::NaiveDate>,
    pub logo_ref: Option<String>,
}

impl SponsorDraft {
    pub fn parse(
        company_name: &str,
        website_url: &str,
        contact_email: &str,
        tier_id: i64,
        paid_through: Option<chrono::NaiveDate>,
        logo_ref: Option<&str>,
    ) -> Result<Self> {
        let mut checks = Checks::new();
        let company_name = checks.take(text("company_name", company_name, 1, 100, false));
        let website_url = checks.take(WebsiteUrl::parse("website_url", website_url));
        let contact_email = checks.take(Email::parse("contact_email", contact_email));
        let logo_ref = match logo_ref {
            Some(l) => checks.take(text("logo_ref", l, 1, 500, false)),
            None => None,
        };
        checks.finish()?;
        Ok(SponsorDraft {
            company_name: company_name.expect("checked"),
            website_url: website_url.expect("checked"),
            contact_email: contact_email.expect("checked"),
            tier_id,
            paid_through,
            logo_ref,
        })
    }
}

impl SponsorDraft {
    /// Refuses a website on the configured domain blocklist.
    pub fn check_blocklist(&self, blocklist: &[String]) -> Result<()> {
        match blocked_domain(&self.website_url.host(), blocklist) {
            Some(domain) => Err(crate::error::Error::field(
                "website_url",
                format!("links to {domain} are not accepted"),
            )),
            None => Ok(()),
        }
    }
}

/// Whether a sponsor may be shown: approved, and paid through `today` less
/// the grace period or later. A sponsor paid through the 10th with 14 days of
/// grace shows until the 24th inclusive.
pub fn sponsor_is_public(
    status: SponsorStatus,
    paid_through: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
    grace_days: i64,
) -> bool {
    status == SponsorStatus::Approved
        && paid_through.is_some_and(|d| d >= visible_paid_through(today, grace_days))
}

/// The earliest `paid_through` date still shown on `today`.
pub fn visible_paid_through(today: chrono::NaiveDate, grace_days: i64) -> chrono::NaiveDate {
    today - chrono::Duration::days(grace_days.max(0))
}

/// Why a sponsor's publication changed, as the audit log records it.
pub fn publication_reason(
    status: SponsorStatus,
    paid_through: Option<chrono::NaiveDate>,
    now_public: bool,
) -> &'static str {
    match (now_public, status, paid_through) {
        (true, _, _) => "approved and paid",
        (false, SponsorStatus::Rejected, _) => "rejected",
        (false, SponsorStatus::Pending, _) => "no longer approved",
        (false, SponsorStatus::Approved, None) => "no paid period",
        (false, SponsorStatus::Approved, Some(_)) => "paid period and grace ended",
    }
}

/// A domain blocklist: a host matches an entry equal to it or to one of its
/// parent domains (`casino.example` blocks `www.casino.example`).
pub fn blocked_domain<'a>(host: &str, blocklist: &'a [String]) -> Option<&'a str> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    blocklist
        .iter()
        .map(|b| b.trim().trim_start_matches("*.").trim_end_matches('.'))
        .find(|b| {
            !b.is_empty() && {
                let b = b.to_ascii_lowercase();
                host == b || host.ends_with(&format!(".{b}"))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_normalised() {
        let e = Email::parse("email", " Ann@Example.ORG ").unwrap();
        assert_eq!(e.address, "Ann@Example.ORG");
        assert_eq!(e.normalized, "ann@example.org");
        for bad in [
            "",
            "ann",
            "ann@",
            "Ann <ann@example.org>",
            "a@[127.0.0.1]",
            "a@localhost",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_and_emails_refuse_nul_controls_and_bidi_overrides() {
        let ok = |name: &str| PatronDraft::parse("ann@example.org", name, Visibility::Public);
        assert!(ok("Ann Lovelace").is_ok());
        assert!(
            ok("\u{5d0}\u{5e0}\u{5d4} \u{200f}(Anna)").is_ok(),
            "marks stay allowed"
        );
        for bad in [
            "Ann\0",
            "Ann\u{7}",
            "A\u{85}nn",
            "Ann\u{202E}ecalevol",
            "\u{2067}Ann",
        ] {
            assert!(ok(bad).is_err(), "{bad:?}");
        }
        for bad in ["ann\0@example.org", "ann\u{202E}@example.org"] {
            assert!(Email::parse("email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn website_urls_must_be_plain_http_links() {
        assert_eq!(
            WebsiteUrl::parse("u", "HTTPS://Example.COM").unwrap().0,
            "https://example.com/"
        );
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "ftp://example.com",
            "https://user:pw@example.com",
            "example.com",
            "https://nodot",
        ] {
            assert!(WebsiteUrl::parse("u", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sponsors_show_only_while_approved_and_paid_plus_grace() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 5, 10).unwrap();
        let yesterday = today.pred_opt();
        let approved = SponsorStatus::Approved;
        assert!(sponsor_is_public(approved, Some(today), today, 0));
        assert!(!sponsor_is_public(approved, yesterday, today, 0));
        assert!(sponsor_is_public(approved, yesterday, today, 1));
        let ended = today - chrono::Duration::days(14);
        assert!(sponsor_is_public(approved, Some(ended), today, 14));
        assert!(!sponsor_is_public(approved, ended.pred_opt(), today, 14));
        assert!(!sponsor_is_public(approved, None, today, 14));
        assert!(!sponsor_is_public(
            SponsorStatus::Pending,
            Some(today),
            today,
            14
        ));
    }

    #[test]
    fn blocklisted_domains_include_their_subdomains() {
        let list = vec!["casino.example".to_owned(), "*.spam.test".to_owned()];
        assert_eq!(
            blocked_domain("casino.example", &list),
            Some("casino.example")
        );
        assert!(blocked_domain("WWW.Casino.Example.", &list).is_some());
        assert!(blocked_domain("a.spam.test", &list).is_some());
        assert!(blocked_domain("notcasino.example", &list).is_none());
        assert!(blocked_domain("example", &list).is_none());
    }
}

/// A language tag for emails, e.g. `fr` or `pt-BR`: a 2 or 3 letter
/// language, optionally a 2 letter or 3 digit region. Normalised to
/// lowercase language and uppercase region.
pub fn parse_locale(field: &str, raw: &str) -> Result<String, FieldError> {
    let bad = || FieldError::new(field, "must be a language tag such as \"fr\" or \"pt-BR\"");
    let mut parts = raw.trim().split(['-', '_']);
    let language = parts.next().unwrap_or_default();
    if !(2..=3).contains(&language.len()) || !language.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(bad());
    }
    let mut tag = language.to_ascii_lowercase();
    if let Some(region) = parts.next() {
        let letters = region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic());
        let digits = region.len() == 3 && region.chars().all(|c| c.is_ascii_digit());
        if !(letters || digits) {
            return Err(bad());
        }
        tag.push('-');
        tag.push_str(&region.to_ascii_uppercase());
    }
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(tag)
}

#[cfg(test)]
mod locale_tests {
    use super::parse_locale;

    #[test]
    fn locales_are_language_tags() {
        assert_eq!(parse_locale("locale", "FR").unwrap(), "fr");
        assert_eq!(parse_locale("locale", "pt_br").unwrap(), "pt-BR");
        assert_eq!(parse_locale("locale", "es-419").unwrap(), "es-419");
        for bad in ["", "f", "french", "fr-", "fr-FRA", "../en", "fr-FR-x"] {
            assert!(parse_locale("locale", bad).is_err(), "{bad}");
        }
    }
}
