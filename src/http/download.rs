//! Files the browser saves: CSV reports and exports.

use axum::{
    body::Body,
    http::header,
    response::{IntoResponse, Response},
};

/// A CSV attachment. `filename` is always ours (letters, digits, dashes,
/// dots), never the user's.
pub fn csv(filename: &str, body: impl Into<Body>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body.into(),
    )
        .into_response()
}
