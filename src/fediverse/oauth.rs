//! A Mastodon instance's OAuth 2 (authorization code with PKCE): the app
//! registered once through `POST /api/v1/apps`, the authorize link, the
//! token exchange, and the account read from `verify_credentials`. Used by
//! the console's "Sign in with Mastodon" and by patrons linking their
//! account (`service::fediverse`).

use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What we ask for: reading the signed-in account, nothing more.
pub const SCOPES: &str = "read:accounts";

/// The app's credentials at one instance.
#[derive(Debug, Clone, Deserialize)]
pub struct App {
    pub client_id: String,
    pub client_secret: String,
}

/// The account that signed in, as the instance describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    /// "user" for a local account, "user@host" for a remote one.
    pub acct: String,
    /// The account's role at the instance (Mastodon 4.x), when it has one.
    #[serde(default)]
    pub role: Option<Role>,
    /// Its profile page, as the instance gives it.
    #[serde(default)]
    pub url: Option<String>,
}

/// A role at the instance, as `verify_credentials` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Role {
    /// The permission bits, as a decimal string ("1", "1048575"). Kept as
    /// JSON: anything but a string of digits grants nothing, and does not
    /// stop a linked account from signing in.
    #[serde(default)]
    pub permissions: serde_json::Value,
}

/// Mastodon's Administrator permission: every permission, instance-wide.
const ADMINISTRATOR: u64 = 0x1;

impl Account {
    /// Whether the instance says this account holds the Administrator
    /// permission.
    pub fn is_instance_administrator(&self) -> bool {
        self.role
            .as_ref()
            .and_then(|r| r.permissions.as_str())
            .is_some_and(has_administrator_bit)
    }

    /// The full `user@host`: local accounts get the instance's host.
    pub fn full_acct(&self, instance_url: &str) -> String {
        full_acct(&self.acct, instance_url)
    }
}

/// `acct` as `user@host`, lower-cased, with the instance's host for a
/// local account; a leading "@" is dropped.
pub fn full_acct(acct: &str, instance_url: &str) -> String {
    let acct = acct.trim().trim_start_matches('@').to_lowercase();
    if acct.contains('@') {
        return acct;
    }
    let host = url::Url::parse(instance_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_lowercase))
        .unwrap_or_default();
    format!("{acct}@{host}")
}

/// Whether a decimal permissions string has the Administrator bit. Strict:
/// only ASCII digits ("+1", " 1", "0x1" and overflows grant nothing).
pub fn has_administrator_bit(permissions: &str) -> bool {
    !permissions.is_empty()
        && permissions.bytes().all(|b| b.is_ascii_digit())
        && permissions
            .parse::<u64>()
            .is_ok_and(|bits| bits & ADMINISTRATOR != 0)
}

/// A PKCE pair (RFC 7636): the secret verifier, and its S256 challenge
/// that goes in the authorize link.
pub fn pkce() -> (String, String) {
    let verifier = crate::auth::session::mint();
    (verifier.clone(), challenge(&verifier))
}

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Where the person approves the sign-in at their instance.
pub fn authorize_url(
    instance_url: &str,
    app: &App,
    redirect_uri: &str,
    state: &str,
    challenge: &str,
) -> Result<String> {
    let mut url = url::Url::parse(&format!(
        "{}/oauth/authorize",
        instance_url.trim_end_matches('/')
    ))
    .map_err(|e| Error::Config(format!("instance URL {instance_url:?}: {e}")))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &app.client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", SCOPES)
        .append_pair("state", state)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url.into())
}

/// An HTTP client for instances: short timeouts, no redirects followed.
pub fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("patronage/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Error::internal_from)
}

fn unreachable(what: &str, e: impl std::fmt::Display) -> Error {
    tracing::warn!(error = %e, "{what}");
    Error::Unavailable(format!("the Mastodon instance did not answer ({what})"))
}

async fn json<T: serde::de::DeserializeOwned>(what: &str, res: reqwest::Response) -> Result<T> {
    if !res.status().is_success() {
        return Err(unreachable(what, res.status()));
    }
    res.json().await.map_err(|e| unreachable(what, e))
}

/// Registers this console as an app at the instance (`POST /api/v1/apps`).
pub async fn register(
    http: &reqwest::Client,
    instance_url: &str,
    redirect_uri: &str,
    website: &str,
) -> Result<App> {
    let res = http
        .post(format!(
            "{}/api/v1/apps",
            instance_url.trim_end_matches('/')
        ))
        .form(&[
            ("client_name", "patronage"),
            ("redirect_uris", redirect_uri),
            ("scopes", SCOPES),
            ("website", website),
        ])
        .send()
        .await
        .map_err(|e| unreachable("registering the app", e))?;
    json("registering the app", res).await
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
}

/// Trades the code from the callback for the account that approved it.
pub async fn account(
    http: &reqwest::Client,
    instance_url: &str,
    app: &App,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Result<Account> {
    let base = instance_url.trim_end_matches('/');
    let res = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &app.client_id),
            ("client_secret", &app.client_secret),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("scope", SCOPES),
        ])
        .send()
        .await
        .map_err(|e| unreachable("exchanging the code", e))?;
    if res.status().is_client_error() {
        // A stale, replayed or forged code, or a verifier that does not match.
        return Err(Error::InvalidCredentials);
    }
    let token: Token = json("exchanging the code", res).await?;
    let res = http
        .get(format!("{base}/api/v1/accounts/verify_credentials"))
        .bearer_auth(&token.access_token)
        .send()
        .await
        .map_err(|e| unreachable("reading the account", e))?;
    let account: Account = json("reading the account", res).await?;
    if account.acct.trim().is_empty() {
        return Err(unreachable("reading the account", "no acct in the answer"));
    }
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_accounts_get_the_instance_host() {
        assert_eq!(
            full_acct("Admin", "https://Example.Social/"),
            "admin@example.social"
        );
        assert_eq!(
            full_acct("@ann@other.example", "https://example.social"),
            "ann@other.example"
        );
    }

    #[test]
    fn only_a_decimal_string_with_bit_one_is_an_administrator() {
        for yes in ["1", "3", "1048575", "0001"] {
            assert!(has_administrator_bit(yes), "{yes}");
        }
        for no in [
            "",
            "0",
            "2",
            "1048574",
            "+1",
            " 1",
            "1 ",
            "0x1",
            "-1",
            "1.0",
            "one",
            "99999999999999999999999",
        ] {
            assert!(!has_administrator_bit(no), "{no:?}");
        }
        let account = |role: serde_json::Value| -> Account {
            serde_json::from_value(serde_json::json!({"acct": "ann", "role": role})).unwrap()
        };
        assert!(account(serde_json::json!({"permissions": "1"})).is_instance_administrator());
        assert!(!account(serde_json::json!({"permissions": 1})).is_instance_administrator());
        assert!(!account(serde_json::Value::Null).is_instance_administrator());
        let no_role: Account = serde_json::from_value(serde_json::json!({"acct": "ann"})).unwrap();
        assert!(!no_role.is_instance_administrator());
    }

    #[test]
    fn the_challenge_is_the_rfc_7636_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
