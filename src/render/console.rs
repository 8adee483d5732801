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
            "sponsors.html",
            "supporters.html",
            "supporter.html",
            "operations.html",
            "audit.html",
        ) {
            env.add_template(name, source).expect("template parses");
        }
        env
    })
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
