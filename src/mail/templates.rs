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

    fn part(name: &str, locale: &str, part: &str) -> String {
        let localized = format!("{name}/{locale}/{part}");
        if !locale.is_empty() && EMAIL.get_file(&localized).is_some() {
            format!("email/{localized}")
        } else {
            format!("email/{name}/{part}")
        }
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
