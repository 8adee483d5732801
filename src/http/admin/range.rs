//! The month range every report takes, and how it asks for CSV.

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::{
    domain::month::Month,
    error::{Error, Result},
};

/// `?from=YYYY-MM&to=YYYY-MM[&format=json|csv]`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportRange {
    /// First month, YYYY-MM.
    #[param(schema_with = crate::http::openapi::field::month, required = true)]
    from: String,
    /// Last month, YYYY-MM (at most 120 months after `from`).
    #[param(schema_with = crate::http::openapi::field::month, required = true)]
    to: String,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

impl ReportRange {
    /// The first and last month, in order and at most 120 apart.
    pub(super) fn months(&self) -> Result<(Month, Month)> {
        let from = Month::parse("from", &self.from)?;
        let to = Month::parse("to", &self.to)?;
        Month::range(from, to)?;
        Ok((from, to))
    }

    /// Whether the answer is CSV: `format` decides, else the Accept header.
    pub(super) fn wants_csv(&self, headers: &HeaderMap) -> Result<bool> {
        Ok(match self.format.as_deref() {
            Some("csv") => true,
            Some("json") => false,
            Some(_) => return Err(Error::field("format", "must be json or csv")),
            None => headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("text/csv")),
        })
    }
}
