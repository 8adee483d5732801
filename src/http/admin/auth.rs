//! Sign-in, first-owner setup, and who am I.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::Role,
    error::{Error, Result},
    http::{
        AppState,
        extract::{Admin, ClientIp, Json},
    },
    service,
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(setup))
        .routes(routes!(me))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
    /// For admins with a second factor: the code from their authenticator
    /// app, or a recovery code.
    one_time_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct TokenResponse {
    access_token: String,
    /// Always "Bearer".
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
}

/// Exchanges email and password for a short-lived access token. Unknown
/// emails and wrong passwords get the same answer, after the same work.
#[utoipa::path(post, path = "/api/v1/admin/login", tag = "admin", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem), (status = 503, body = crate::error::Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<axum::Json<TokenResponse>> {
    let admin =
        service::admins::sign_in(&state, &state.login_limiter, ip, &req.email, req.password)
            .await?;
    if service::admins::has_second_factor(&state, admin.id).await? {
        let code = req
            .one_time_code
            .as_deref()
            .ok_or(Error::InvalidCredentials)?;
        service::admins::check_second_factor(&state, &admin, code).await?;
    }
    Ok(axum::Json(TokenResponse {
        access_token: state.tokens.issue(admin.id, admin.role)?,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_secs,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetupRequest {
    /// The token printed by `patronage serve` while no owner exists.
    setup_token: String,
    #[schema(schema_with = crate::http::openapi::field::email)]
    email: String,
    #[schema(schema_with = crate::http::openapi::field::new_password)]
    password: String,
}

#[derive(Serialize, ToSchema)]
struct AdminView {
    id: i64,
    email: String,
    role: Role,
}

/// Creates the first owner with the one-time setup token. Refused once an
/// owner exists or the token is spent or expired.
#[utoipa::path(post, path = "/api/v1/admin/setup", tag = "admin", request_body = SetupRequest,
    responses((status = 201, body = AdminView), (status = 401, body = crate::error::Problem)))]
async fn setup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<SetupRequest>,
) -> Result<(StatusCode, axum::Json<AdminView>)> {
    let admin = service::admins::create_first_owner(
        &state,
        &state.login_limiter,
        ip,
        &req.setup_token,
        &req.email,
        req.password,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AdminView {
            id: admin.id,
            email: admin.email,
            role: admin.role,
        }),
    ))
}

/// The signed-in admin.
#[utoipa::path(get, path = "/api/v1/admin/me", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AdminView), (status = 401, body = crate::error::Problem)))]
async fn me(admin: Admin) -> axum::Json<AdminView> {
    axum::Json(AdminView {
        id: admin.id,
        email: admin.email,
        role: admin.role,
    })
}
