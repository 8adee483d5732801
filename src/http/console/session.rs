//! Who is signed in to the console, and the forms they post.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts},
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    auth::session::{self, Cookies, Lifetimes},
    error::{Error, Result},
    http::{AppState, extract::Admin, origin},
    store,
};

/// The admin behind a live console session. Refused with 401 (the sign-in
/// page) when the cookie is missing, unknown, idle too long, expired or
/// revoked, or its admin is disabled.
pub struct Signed {
    pub admin: Admin,
    pub csrf: String,
    /// The hash of this session's id (what sign-out revokes).
    pub id_hash: String,
    pub flash: Option<Flash>,
    pub cookies: Cookies,
}

impl Signed {
    /// Owner-only pages and actions; viewers get 403.
    pub fn owner(&self) -> Result<&Admin> {
        if self.admin.role.can_write() {
            Ok(&self.admin)
        } else {
            Err(Error::Forbidden)
        }
    }
}

pub fn cookies(state: &AppState) -> Cookies {
    Cookies {
        secure: state.settings.pages.site_url.starts_with("https://"),
    }
}

pub fn cookie_header(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let cookies = cookies(state);
        let jar = cookie_header(&parts.headers);
        let id = session::cookie(jar, cookies.session_name()).ok_or(Error::Unauthorized)?;
        let id_hash = crate::auth::hash_token(id);
        let now = store::now();
        let life = Lifetimes::from_settings(&state.settings.auth);
        let found = store::sessions::find_live(&state.db, &id_hash, now, now - life.idle)
            .await?
            // Waiting for its second factor, a session opens nothing yet.
            .filter(|s| !s.second_factor_due)
            .ok_or(Error::Unauthorized)?;
        let admin = store::admins::find(&state.db, found.admin_id)
            .await?
            .filter(|a| !a.disabled)
            .ok_or(Error::Unauthorized)?;
        if session::needs_touch(found.last_seen_at, now) {
            store::sessions::touch(&state.db, &id_hash, now).await?;
        }
        Ok(Signed {
            admin: Admin {
                id: admin.id,
                email: admin.email,
                role: admin.role,
            },
            csrf: found.csrf_token,
            id_hash,
            flash: session::cookie(jar, Cookies::FLASH).and_then(Flash::decode),
            cookies,
        })
    }
}

/// A message for the next page: what an action did, or why it did not.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Flash {
    pub ok: bool,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Flash {
            ok: true,
            text: text.into(),
        }
    }

    /// What a person can fix, in words: the problem and each field's.
    pub fn error(e: &Error) -> Self {
        let text = match e {
            Error::Validation(fields) => fields
                .iter()
                .map(|f| format!("{}: {}", f.field.replace('_', " "), f.message))
                .collect::<Vec<_>>()
                .join("; "),
            Error::Conflict { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Flash { ok: false, text }
    }

    pub fn encode(&self) -> String {
        let text = format!("{}{}", if self.ok { "+" } else { "-" }, self.text);
        url::form_urlencoded::byte_serialize(text.chars().take(600).collect::<String>().as_bytes())
            .collect()
    }

    fn decode(raw: &str) -> Option<Flash> {
        let text: String = url::form_urlencoded::parse(format!("f={raw}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
        let (sign, rest) = text.split_at_checked(1)?;
        Some(Flash {
            ok: sign == "+",
            text: rest.to_owned(),
        })
    }
}

/// A console form post: from a signed-in admin, sent by this site (not a
/// page elsewhere) and carrying the session's CSRF token. A missing or
/// wrong token is refused with 403 before anything is read or changed.
pub struct Form<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Form<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        let (mut parts, body) = req.into_parts();
        let signed = Signed::from_request_parts(&mut parts, state).await?;
        origin::same_site_form(&parts.headers, &state.settings.pages.site_url)?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|_| Error::BadRequest("the form could not be read".into()))?;
        let form = checked_form(&body, &signed.csrf)?;
        Ok(Form { signed, form })
    }
}

/// A form only owners may post; a viewer's is refused with 403 (after the
/// CSRF check, before anything else).
pub struct OwnerForm<T> {
    pub signed: Signed,
    pub form: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for OwnerForm<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self> {
        let Form { signed, form } = Form::<T>::from_request(req, state).await?;
        signed.owner()?;
        Ok(OwnerForm { signed, form })
    }
}

/// The form's fields, once its `csrf` field is the expected token.
pub fn checked_form<T: DeserializeOwned>(body: &[u8], expected: &str) -> Result<T> {
    let posted = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !session::csrf_matches(expected, &posted) {
        return Err(Error::CrossSite);
    }
    serde_urlencoded::from_bytes(body).map_err(|e| Error::BadRequest(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flash_survives_its_cookie() {
        for f in [
            Flash::ok("Tier “Friend” created; 5 € a month"),
            Flash::ok(""),
            Flash {
                ok: false,
                text: "a; b=c".into(),
            },
        ] {
            assert_eq!(Flash::decode(&f.encode()), Some(f));
        }
    }

    #[test]
    fn a_form_without_the_right_token_is_refused() {
        #[derive(serde::Deserialize, Debug)]
        struct F {
            name: String,
        }
        assert!(matches!(
            checked_form::<F>(b"name=x", "t0k"),
            Err(Error::CrossSite)
        ));
        assert!(matches!(
            checked_form::<F>(b"name=x&csrf=nope", "t0k"),
            Err(Error::CrossSite)
        ));
        let ok: F = checked_form(b"name=x%20y&csrf=t0k", "t0k").unwrap();
        assert_eq!(ok.name, "x y");
    }
}
