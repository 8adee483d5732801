//! Sign-in, first-owner setup, and who am I.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::{Role, password},
    domain::{Checks, supporter::Email},
    error::{Error, Result},
    http::{
        AppState,
        extract::{Admin, ClientIp, Json},
    },
    store::{self, audit::Actor},
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
    let account = req.email.trim().to_lowercase();
    state.login_limiter.check(ip, &account)?;
    let admin = store::admins::find_by_email(&state.db, &account).await?;
    let stored = admin
        .as_ref()
        .filter(|a| !a.disabled)
        .map(|a| a.password_hash.clone());
    let password = req.password;
    // argon2 is deliberately slow and large: off the async workers, a few
    // at a time.
    let ok = state
        .heavy
        .passwords
        .run(move || password::verify(&password, stored.as_deref()))
        .await?;
    let admin = match (ok, admin) {
        (true, Some(a)) => a,
        _ => {
            tracing::info!(%ip, "failed admin login");
            return Err(Error::InvalidCredentials);
        }
    };
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
    // Per client only: one shared bucket would let anyone block the first
    // setup. The 160-bit token is what protects it.
    state.login_limiter.check_client(ip)?;
    let mut checks = Checks::new();
    let email = checks.take(Email::parse("email", &req.email));
    checks.take(password::check_strength(&req.password));
    checks.finish()?;
    let email = email.expect("checked");
    let token_hash = crate::auth::hash_setup_token(req.setup_token.trim());
    let password = req.password;
    let hash = state
        .heavy
        .passwords
        .run(move || password::hash(&password))
        .await??;
    let actor = Actor {
        id: None,
        label: format!("setup token ({})", email.address),
    };
    let admin = store::admins::create(
        &state.db,
        &actor,
        &email,
        &hash,
        Role::Owner,
        Some(&token_hash),
    )
    .await?;
    tracing::info!(admin = admin.id, "first owner created with the setup token");
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
