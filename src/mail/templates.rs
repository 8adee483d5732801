//! Email templates from `templates/email/`, embedded in the binary so the
//! service runs from any directory. For a message `<name>`, each part
//! (`subject.txt`, `text.txt`, `html.html`) is read from
//! `<name>/<locale>/` when that translation exists, else from `<name>/`.
//! HTML parts are autoescaped; text parts are not HTML and are not.

use include_dir::{Dir, include_dir};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use crate::error::{Error, Result};

static EMAIL: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/email");

#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_loader(|name| {
            Ok(name
                .strip_prefix("email/")
                .and_then(|path| EMAIL.get_file(path))
                .and_then(|f| f.contents_utf8())
                .map(str::to_owned))
        });
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        Templates { env }
    }

    /// Whether a message of this name has templates.
    pub fn exists(name: &str) -> bool {
        EMAIL.get_file(format!("{name}/subject.txt")).is_some()
    }

    /// `pt-BR` looks for `pt-BR/`, then `pt/`, then the default.
    fn part(name: &str, locale: &str, part: &str) -> String {
        let language = locale.split('-').next().unwrap_or_default();
        [locale, language]
            .into_iter()
            .filter(|l| !l.is_empty())
            .map(|l| format!("{name}/{l}/{part}"))
            .find(|path| EMAIL.get_file(path).is_some())
            .map_or_else(
                || format!("email/{name}/{part}"),
                |path| format!("email/{path}"),
            )
    }

    pub fn render<C: Serialize>(&self, name: &str, locale: &str, context: &C) -> Result<Rendered> {
        let render = |part: &str| -> Result<String> {
            let path = Self::part(name, locale, part);
            self.env
                .get_template(&path)
                .and_then(|t| t.render(minijinja::value::Serde(context)))
                .map_err(|e| Error::internal(format!("email template {path}: {e:#}")))
        };
        // A subject is one line, whatever the data in it.
        let subject = render("subject.txt")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Rendered {
            subject,
            text: render("text.txt")?,
            html: render("html.html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Every message patronage sends.
    const ALL: &[&str] = &[
        "welcome",
        "receipt",
        "payment_failed",
        "action_required",
        "pledge_cancelled",
        "gift_thanks",
        "manage_link",
        "sponsor_applied",
        "sponsor_applied_admin",
        "sponsor_approved",
        "sponsor_rejected",
        "sponsor_expiring",
        "sponsor_ended",
        "sponsor_ended_admin",
        "monthly_report",
        "webhook_disabled",
    ];

    #[test]
    fn every_message_renders_in_every_language_with_data_escaped() {
        let hostile = "<script>alert(1)</script>";
        let context = json!({
            "site_name": "Example Social", "base_url": "https://fund.example", "support_url": "https://fund.example/support",
            "manage_request_url": "https://fund.example/support", "manage_url": "https://fund.example/m?t=1",
            "recipient_name": hostile, "amount": "€5", "interval": "month", "tier_name": "Friends",
            "date": "2026-11-27", "reference": "PAT-1", "fix_url": "https://invoice.example/i/1",
            "action_url": "https://invoice.example/i/1", "reason": "payment_failed",
            "come_back_url": "https://fund.example/support", "sponsor_name": hostile, "website_url": "https://acme.example",
            "review_url": "https://fund.example/r", "paid_through": "2026-12-31", "days_left": 14,
            "renew_url": "https://fund.example/support", "month": "2026-10", "currency": "EUR", "gross": "€100",
            "fees": "€3", "refunds": "€0", "net": "€97", "new_supporters": 2, "churned_supporters": 1,
            "failed_payments": 1, "recovered_payments": 1, "report_url": "https://fund.example/report",
            "upcoming_renewals": [{"name": hostile, "tier_name": "Gold", "paid_through": "2026-12-01"}],
            "link_ttl_minutes": 30, "locale": "en", "logo_upload_url": "https://fund.example/sponsor/logo?token=t",
            "endpoint_url": hostile, "failures": 10,
        });
        let templates = Templates::new();
        for name in ALL {
            assert!(Templates::exists(name), "{name}");
            for locale in ["en", "fr", "fr-CA", "xx"] {
                let r = templates.render(name, locale, &context).unwrap();
                assert!(!r.subject.is_empty() && !r.subject.contains('\n'), "{name}");
                assert!(!r.text.is_empty(), "{name}");
                assert!(
                    !r.html.contains("<script>"),
                    "{name} {locale}: HTML escapes data"
                );
            }
        }
        let fr = templates.render("receipt", "fr", &context).unwrap();
        let en = templates.render("receipt", "en", &context).unwrap();
        assert_ne!(fr.subject, en.subject, "the French template is used");
    }
}
