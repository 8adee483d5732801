//! Admin access tokens: HS256 JWTs with issuer, audience and a short expiry.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::Role;
use crate::{
    config::AuthSettings,
    error::{Error, Result},
};

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The admin's id.
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

const LOGO_UPLOAD_AUDIENCE: &str = "patronage-logo-upload";

#[derive(Debug, Serialize, Deserialize)]
struct LinkClaims {
    sub: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// The sponsor's link version when issued: an upload through a link or
    /// a rejection moves it on, which spends every earlier link.
    #[serde(default)]
    ver: i64,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub ttl_secs: u64,
}

impl TokenKeys {
    /// Uses the configured secret, or a key generated once and kept in
    /// `<data_dir>/jwt.key` (mode 0600).
    pub fn load(settings: &AuthSettings, data_dir: &Path) -> Result<Self> {
        let configured = settings.jwt_secret.expose_secret();
        let secret = if configured.is_empty() {
            load_or_create_key(&data_dir.join("jwt.key"))?
        } else {
            configured.as_bytes().to_vec()
        };
        Ok(Self::from_secret(&secret, settings))
    }

    pub fn from_secret(secret: &[u8], settings: &AuthSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: settings.token_ttl_secs,
        }
    }

    pub fn issue(&self, admin_id: i64, role: Role) -> Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: admin_id.to_string(),
            role,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + i64::try_from(self.ttl_secs).unwrap_or(900),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::internal_from)
    }

    /// A link token that lets a sponsor upload its own logo: signed with the
    /// same key, for its own audience (never accepted as an admin token, and
    /// an admin token is never accepted here), bound to the sponsor's id and
    /// link version.
    pub fn issue_logo_upload(
        &self,
        sponsor_id: i64,
        version: i64,
        ttl_secs: i64,
    ) -> Result<(String, i64)> {
        let now = chrono::Utc::now().timestamp();
        let exp = now + ttl_secs.max(60);
        let claims = LinkClaims {
            sub: sponsor_id.to_string(),
            iss: self.issuer.clone(),
            aud: LOGO_UPLOAD_AUDIENCE.to_owned(),
            iat: now,
            exp,
            ver: version,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::internal_from)?;
        Ok((token, exp))
    }

    /// The sponsor and link version a logo-upload token was issued for, if
    /// its signature and expiry are valid. Whether the version is still the
    /// sponsor's (the link is not spent or revoked) is the store's to say.
    pub fn verify_logo_upload(&self, token: &str) -> Result<(i64, i64)> {
        let mut validation = self.validation.clone();
        validation.set_audience(&[LOGO_UPLOAD_AUDIENCE]);
        jsonwebtoken::decode::<LinkClaims>(token, &self.decoding, &validation)
            .ok()
            .and_then(|data| Some((data.claims.sub.parse().ok()?, data.claims.ver)))
            .ok_or(Error::Unauthorized)
    }

    /// Accepts only HS256 tokens signed with our key, unexpired, for our
    /// issuer and audience. Anything else (including `alg: none`) is refused.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| Error::Unauthorized)
    }
}

fn load_or_create_key(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read_to_string(path) {
        Ok(hex_key) => {
            let key = hex::decode(hex_key.trim())
                .map_err(|_| Error::Config(format!("{} is not a hex key", path.display())))?;
            if key.len() < 32 {
                return Err(Error::Config(format!("{} is too short", path.display())));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = vec![0u8; 64];
            rand::rng().fill_bytes(&mut key);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(Error::internal_from)?;
            }
            write_private(path, &hex::encode(&key))?;
            tracing::info!(path = %path.display(), "generated a new token signing key");
            Ok(key)
        }
        Err(e) => Err(Error::Config(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(Error::internal_from)?;
    file.write_all(contents.as_bytes())
        .map_err(Error::internal_from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::from_secret(secret.as_bytes(), &Settings::defaults().auth)
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_role() {
        let k = keys("0123456789abcdef0123456789abcdef");
        let claims = k.verify(&k.issue(7, Role::Viewer).unwrap()).unwrap();
        assert_eq!(claims.sub, "7");
        assert_eq!(claims.role, Role::Viewer);
    }

    #[test]
    fn tokens_from_another_key_or_audience_are_refused() {
        let k = keys("0123456789abcdef0123456789abcdef");
        let other = keys("fedcba9876543210fedcba9876543210");
        assert!(k.verify(&other.issue(1, Role::Owner).unwrap()).is_err());
        let mut s = Settings::defaults().auth;
        s.audience = "someone-else".into();
        let foreign = TokenKeys::from_secret(b"0123456789abcdef0123456789abcdef", &s);
        assert!(k.verify(&foreign.issue(1, Role::Owner).unwrap()).is_err());
    }

    #[test]
    fn logo_upload_tokens_are_not_admin_tokens() {
        let k = keys("0123456789abcdef0123456789abcdef");
        let (link, _) = k.issue_logo_upload(42, 3, 3600).unwrap();
        assert_eq!(k.verify_logo_upload(&link).unwrap(), (42, 3));
        assert!(k.verify(&link).is_err());
        let admin = k.issue(1, Role::Owner).unwrap();
        assert!(k.verify_logo_upload(&admin).is_err());
        let other = keys("fedcba9876543210fedcba9876543210");
        assert!(other.verify_logo_upload(&link).is_err());
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_key(&dir.path().join("jwt.key")).unwrap();
        let b = load_or_create_key(&dir.path().join("jwt.key")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }
}
