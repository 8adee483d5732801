//! The one error type. Every failure a client can see becomes an RFC 9457
//! `application/problem+json` body with a stable `type`; internal causes go to
//! the log and never to the client.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

/// Where problem types are documented; the slug after it never changes.
pub const PROBLEM_BASE: &str = "https://patronage.dev/problems/";

#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("authentication required")]
    Unauthorized,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("forbidden")]
    Forbidden,
    /// A form posted from another site (a forged request).
    #[error("cross-site request refused")]
    CrossSite,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A unique key or a state rule refused the change.
    #[error("conflict on {field}: {message}")]
    Conflict { field: String, message: String },
    #[error("request timed out")]
    Timeout,
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// Heavy work (hashing, image decoding, rendering) is at capacity.
    #[error("server busy")]
    Busy { retry_after_secs: u64 },
    /// No Stripe secret key is configured.
    #[error("payments are not configured")]
    PaymentsNotConfigured,
    /// Stripe refused or could not be reached; `source` is the client's
    /// own error, when there is one, for the log.
    #[error("payment provider: {message}")]
    PaymentProvider {
        message: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Something this needs has not happened yet (a refund whose payment is
    /// not booked, a charge without its balance transaction). Retried later;
    /// not a fault. `waits_for` names the charge whose booking wakes it.
    #[error("not yet: {reason}")]
    NotYet {
        reason: String,
        waits_for: Option<String>,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("internal: {message}")]
    Internal {
        message: String,
        #[source]
        source: Option<Cause>,
    },
}

/// What went wrong underneath an `Internal` or `PaymentProvider` error.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        Error::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A fault of ours, described.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal {
            message: message.to_string(),
            source: None,
        }
    }

    /// A fault of ours, keeping the error that caused it.
    pub fn internal_from(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Internal {
            message: cause.to_string(),
            source: Some(Box::new(cause)),
        }
    }

    /// The payment provider failed us, described.
    pub fn provider(message: impl std::fmt::Display) -> Self {
        Error::PaymentProvider {
            message: message.to_string(),
            source: None,
        }
    }

    /// The payment provider failed us, keeping its client's error.
    pub fn provider_from(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::PaymentProvider {
            message: cause.to_string(),
            source: Some(Box::new(cause)),
        }
    }

    /// The stable slug of the problem `type`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "validation-failed",
            Error::BadRequest(_) => "malformed-request",
            Error::UnsupportedMediaType(_) => "unsupported-media-type",
            Error::PayloadTooLarge => "payload-too-large",
            Error::Unauthorized => "unauthorized",
            Error::InvalidCredentials => "invalid-credentials",
            Error::Forbidden => "forbidden",
            Error::CrossSite => "cross-site-request",
            Error::NotFound(_) => "not-found",
            Error::MethodNotAllowed => "method-not-allowed",
            Error::Conflict { .. } => "conflict",
            Error::RateLimited { .. } => "rate-limited",
            Error::Busy { .. } => "server-busy",
            Error::Timeout => "request-timeout",
            Error::PaymentsNotConfigured => "payments-not-configured",
            Error::PaymentProvider { .. } => "payment-provider-error",
            Error::Unavailable(_)
            | Error::NotYet { .. }
            | Error::Database(sqlx::Error::PoolTimedOut) => "service-unavailable",
            Error::Config(_)
            | Error::Database(_)
            | Error::Migration(_)
            | Error::Internal { .. } => "internal-error",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Error::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::Unauthorized | Error::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Error::Forbidden | Error::CrossSite => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Timeout => StatusCode::REQUEST_TIMEOUT,
            Error::PaymentsNotConfigured => StatusCode::SERVICE_UNAVAILABLE,
            Error::PaymentProvider { .. } => StatusCode::BAD_GATEWAY,
            Error::Busy { .. }
            | Error::Unavailable(_)
            | Error::NotYet { .. }
            | Error::Database(sqlx::Error::PoolTimedOut) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Error::Validation(_) => "The request has invalid fields",
            Error::BadRequest(_) => "The request could not be understood",
            Error::UnsupportedMediaType(_) => "Unsupported media type",
            Error::PayloadTooLarge => "The request body is too large",
            Error::Unauthorized => "Authentication is required",
            Error::InvalidCredentials => "Invalid email or password",
            Error::Forbidden => "Your role does not allow this",
            Error::CrossSite => "Forms may be posted only from this site",
            Error::NotFound(_) => "Not found",
            Error::MethodNotAllowed => "Method not allowed",
            Error::Conflict { .. } => "The request conflicts with existing data",
            Error::RateLimited { .. } => "Too many requests",
            Error::Busy { .. } => "The server is busy",
            Error::Timeout => "The request took too long",
            Error::PaymentsNotConfigured => "Payments are not configured on this server",
            Error::PaymentProvider { .. } => "The payment provider could not complete the request",
            _ if self.status() == StatusCode::SERVICE_UNAVAILABLE => {
                "The service is temporarily unavailable"
            }
            _ => "Internal error",
        }
    }

    /// What the client may read; internal causes are never included.
    fn detail(&self) -> Option<String> {
        match self {
            Error::BadRequest(d) | Error::UnsupportedMediaType(d) => Some(d.clone()),
            Error::NotFound(what) => Some(format!("No such {what}.")),
            Error::Conflict { message, .. } => Some(message.clone()),
            Error::RateLimited { retry_after_secs } | Error::Busy { retry_after_secs } => {
                Some(format!("Try again in {retry_after_secs} seconds."))
            }
            _ => None,
        }
    }
}

/// The RFC 9457 body. `code` repeats the slug of `type` for clients that
/// prefer a short machine-readable value.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Error::Busy { .. } = self {
            // Expected under a flood; counted in patronage_heavy_refused_total.
            tracing::debug!("refused: server busy");
        } else if status.is_server_error() {
            // The request id is on the enclosing span, so this line can be
            // matched to what the client saw.
            // With its causes: `source` holds what the message summarises.
            let causes = std::iter::successors(std::error::Error::source(&self), |e| e.source())
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(": ");
            tracing::error!(error = %self, causes, "request failed");
        }
        let errors = match &self {
            Error::Validation(fields) => fields.clone(),
            Error::Conflict { field, message } => vec![FieldError::new(field, message)],
            _ => Vec::new(),
        };
        let problem = Problem {
            type_: format!("{PROBLEM_BASE}{}", self.code()),
            title: self.title().to_owned(),
            status: status.as_u16(),
            code: self.code().to_owned(),
            detail: self.detail(),
            errors,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Error::RateLimited { retry_after_secs } | Error::Busy { retry_after_secs } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"patronage\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn internal_and_provider_errors_keep_what_caused_them() {
        let io = std::io::Error::other("disk full");
        let e = Error::internal_from(io);
        assert_eq!(e.to_string(), "internal: disk full");
        let source = std::error::Error::source(&e).expect("the cause is kept");
        assert_eq!(source.to_string(), "disk full");

        let parse = "x".parse::<i64>().unwrap_err();
        let e = Error::provider_from(parse);
        assert!(std::error::Error::source(&e).is_some());
        assert!(std::error::Error::source(&Error::internal("described only")).is_none());
    }
}
