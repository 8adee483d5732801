//! The admin console's templates (`templates/admin/`), built into the
//! binary and auto-escaped like every page.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

use crate::error::{Error, Result};

/// One list, so a page cannot be added without being built in.
macro_rules! console_templates {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../templates/admin/", $name)))),*]
    };
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = super::page::html_environment();
        env.add_filter("truncate", truncate);
        env.add_filter("count", count);
        for (name, source) in console_templates!(
            "layout.html",
            "error.html",
            "login.html",
            "setup.html",
            "overview.html",
            "tiers.html",
            "tier.html",
            "ledger.html",
            "account.html",
            "reports.html",
            "costs.html",
            "webhooks.html",
            "import.html",
            "analytics.html",
            "analytics_detail.html",
            "sponsors.html",
            "supporters.html",
            "supporter.html",
            "operations.html",
            "fediverse.html",
            "audit.html",
            "settings.html",
            "invite.html",
            "code.html",
            "second_factor.html",
        ) {
            env.add_template(name, source).expect("template parses");
        }
        env
    })
}

/// The first `n` characters of `text`, with "…" when some were cut.
fn truncate(text: String, n: usize) -> String {
    match text.char_indices().nth(n) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// "1 new pledge", "3 new pledges": `{{ n | count("new pledge") }}`, with
/// the plural given when it is not the singular plus "s".
fn count(n: i64, singular: String, plural: Option<String>) -> String {
    let noun = match (n, plural) {
        (1, _) => singular,
        (_, Some(plural)) => plural,
        (_, None) => format!("{singular}s"),
    };
    format!("{n} {noun}")
}

/// Renders `name` with `ctx`. A template fault is ours: logged, and the
/// visitor gets the usual internal-error page.
pub fn render(name: &str, ctx: impl Serialize) -> Result<String> {
    env()
        .get_template(name)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
        .map_err(|e| {
            tracing::error!(error = %e, template = name, "console template failed");
            Error::internal_from(e)
        })
}

/// The console's one stylesheet, served from `'self'`.
pub const STYLESHEET: &str = include_str!("../../templates/admin/console.css");

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(1, "new pledge".into(), None), "1 new pledge");
        assert_eq!(super::count(0, "new pledge".into(), None), "0 new pledges");
        assert_eq!(
            super::count(2, "entry".into(), Some("entries".into())),
            "2 entries"
        );
    }

    use super::truncate;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        assert_eq!(truncate("héllo wörld".into(), 7), "héllo w…");
        assert_eq!(truncate("short".into(), 7), "short");
    }
}
