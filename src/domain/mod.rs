//! Domain rules without I/O: parsing input into valid values, and the
//! arithmetic of pledges, totals and months. Nothing here touches the
//! database or the network.

pub mod analytics;
pub mod campaign;
pub mod costs;
pub mod fediverse;
pub mod funding;
pub mod imports;
pub mod instance;
pub mod ledger;
pub mod logo;
pub mod money;
pub mod month;
pub mod pledge;
pub mod public;
pub mod schedule;
pub mod supporter;
pub mod tier;
pub mod transparency;
pub mod webhooks;
pub mod work;

use crate::error::FieldError;

/// Text for a CSV cell: a value starting like a formula (= + - @, a tab or
/// a carriage return) is quoted, so a spreadsheet shows it instead of
/// running it.
pub fn spreadsheet_safe(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// Collects field errors so one response can list every bad field.
#[derive(Debug, Default)]
pub struct Checks(Vec<FieldError>);

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Keeps the value if valid, records the error otherwise.
    pub fn take<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    pub fn finish(self) -> Result<(), crate::error::Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(crate::error::Error::Validation(self.0))
        }
    }
}

/// Trimmed text of `min..=max` characters with no control characters (line
/// breaks allowed only when `multiline`).
pub fn text(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<String, FieldError> {
    // The limit counts what was sent, surrounding spaces included, as an
    // HTML `maxlength` or a JSON Schema `maxLength` does.
    let sent = value.chars().count();
    let value = value.trim();
    let len = value.chars().count();
    if len < min {
        return Err(FieldError::new(
            field,
            if min == 1 {
                "must not be empty".to_owned()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    if sent > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let bad = |c: char| c.is_control() && !(multiline && (c == '\n' || c == '\r' || c == '\t'));
    if value.chars().any(bad) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    if value.chars().any(is_bidi_control) {
        return Err(FieldError::new(
            field,
            "must not contain bidirectional override or isolate characters",
        ));
    }
    Ok(value.to_owned())
}

/// The invisible characters that reorder the text after them: embeddings
/// and overrides (U+202A to U+202E) and isolates (U+2066 to U+2069).
///
/// They are refused rather than stripped or isolated on output: a name
/// with U+202E shows as other text than it is ("Alice\u{202E}nimda" reads
/// "Aliceadmin"), and an unterminated one spills into the text around it
/// on every page, feed and email that shows it. Nobody types them into a
/// name, so refusing costs nothing and keeps every later view safe.
/// The marks (U+200E, U+200F, U+061C) stay allowed: they reorder nothing,
/// they only set the direction of neighbouring punctuation, which mixed
/// right-to-left names may need.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Control characters no request may carry in any text (query strings,
/// paths, JSON strings): every C0 and C1 control but tab and line breaks.
/// NUL in particular is not storable in PostgreSQL text.
pub fn is_refused_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// An amount in minor units within the accepted range.
pub fn amount(field: &str, value: i64) -> Result<i64, FieldError> {
    if value <= 0 {
        return Err(FieldError::new(
            field,
            "must be a positive amount in minor units",
        ));
    }
    if value > money::MAX_AMOUNT_MINOR {
        return Err(FieldError::new(
            field,
            format!("must be at most {}", money::MAX_AMOUNT_MINOR),
        ));
    }
    Ok(value)
}

/// Lets sqlx read `$name` from a TEXT column through `$name::parse`, on
/// either database. An unknown value is an error, never a default.
macro_rules! decode_from_text {
    ($name:ident) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<DB>>::decode(value)?;
                $name::parse(s).ok_or_else(|| format!("unknown {} {s:?}", stringify!($name)).into())
            }
        }
    };
}
pub(crate) use decode_from_text;

/// Defines a string-backed enum stored as TEXT and sent as lowercase JSON.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        $crate::domain::decode_from_text!($name);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;
