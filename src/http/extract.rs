//! Request extractors whose failures are problem+json like every other error.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{
        ConnectInfo, FromRequest, FromRequestParts, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{Method, StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::{
    auth::Role,
    config::TrustedProxies,
    error::{Error, FieldError},
    store,
};

/// A JSON body. Unknown fields are refused by the request types themselves
/// (`deny_unknown_fields`); size is capped by the body limit layer.
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Error::UnsupportedMediaType(
                "send the body as application/json".into(),
            ));
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
                _ => Error::BadRequest("the body could not be read".into()),
            })?;
        if let Some(field) = super::controls::json_field_with_control(&body) {
            return Err(Error::field(&field, "must not contain control characters"));
        }
        let axum::Json(mut value) =
            axum::Json::<serde_json::Value>::from_bytes(&body).map_err(json_rejection)?;
        integral_floats_as_integers(&mut value);
        let bytes = serde_json::to_vec(&value).map_err(Error::internal_from)?;
        axum::Json::<T>::from_bytes(&bytes)
            .map(|axum::Json(value)| Json(value))
            .map_err(json_rejection)
    }
}

/// JSON has one number type, and JSON Schema counts `5.0` as the integer 5;
/// so does this API, as clients that only have floats send it that way.
fn integral_floats_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f >= i64::MIN as f64
                && f < i64::MAX as f64
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// `application/json` or any `application/*+json`, as axum's own `Json`.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(mime) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
    else {
        return false;
    };
    let mime = mime.trim().to_ascii_lowercase();
    mime.strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field ("name: invalid type ...");
            // it describes the client's input only.
            let text = e.body_text();
            let detail = text
                .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                .unwrap_or(&text)
                .to_owned();
            let field = detail
                .split_once(": ")
                .map(|(path, _)| path.to_owned())
                .filter(|p| !p.contains(' '))
                .unwrap_or_else(|| "body".to_owned());
            Error::Validation(vec![FieldError::new(field, detail)])
        }
        JsonRejection::JsonSyntaxError(_) => Error::BadRequest("the body is not valid JSON".into()),
        JsonRejection::MissingJsonContentType(_) => {
            Error::UnsupportedMediaType("send the body as application/json".into())
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
        _ => Error::BadRequest("the body could not be read".into()),
    }
}

pub struct Query<T>(pub T);

impl<S, T> FromRequestParts<S> for Query<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_owned();
                Error::Validation(vec![FieldError::new("query", detail)])
            })
    }
}

pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_: PathRejection| Error::NotFound("resource"))
    }
}

/// The client's address, for rate limits. Without `server.trusted_proxies`
/// it is the connecting address. When that address is a trusted proxy, it is
/// the right-most `X-Forwarded-For` entry that is not one: each proxy appends
/// the address it saw, so everything to its left was written by the client
/// and may be forged.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().unwrap_or(""));
        Ok(ClientIp(client_address(
            peer,
            forwarded,
            &state.settings.server.trusted_proxies,
        )))
    }
}

/// Walks the proxy chain from the peer leftwards while each hop is trusted.
/// An entry that is not an address ends the walk at the last trusted hop.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_hop(entry) else {
            break;
        };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// `1.2.3.4`, `2001:db8::1`, or either with a port (`[2001:db8::1]:443`).
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

/// A signed-in admin of any role. The role is read from the database, so a
/// demoted or disabled admin loses access at once, not when the token ends.
#[derive(Debug, Clone)]
pub struct Admin {
    pub id: i64,
    pub email: String,
    pub role: Role,
}

impl Admin {
    pub fn actor(&self) -> store::audit::Actor {
        store::audit::Actor::admin(self.id, &self.email)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let Some(token) = token else {
            // A console session may read the API too (the console links to
            // its JSON and CSV), but never change anything through it: a
            // cookie rides along on requests other sites make, and only the
            // console's forms check a CSRF token.
            if parts.method == Method::GET || parts.method == Method::HEAD {
                let signed = crate::http::console::Signed::from_request_parts(parts, state).await?;
                return Ok(signed.admin);
            }
            return Err(Error::Unauthorized);
        };
        let claims = state.tokens.verify(token.trim())?;
        let id: i64 = claims.sub.parse().map_err(|_| Error::Unauthorized)?;
        let admin = store::admins::find(&state.db, id)
            .await?
            .ok_or(Error::Unauthorized)?;
        if admin.disabled {
            return Err(Error::Unauthorized);
        }
        Ok(Admin {
            id: admin.id,
            email: admin.email,
            role: admin.role,
        })
    }
}

/// An admin allowed to change things (an owner).
#[derive(Debug, Clone)]
pub struct Owner(pub Admin);

impl FromRequestParts<AppState> for Owner {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let admin = Admin::from_request_parts(parts, state).await?;
        if !admin.role.can_write() {
            return Err(Error::Forbidden);
        }
        Ok(Owner(admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        let trusted = TrustedProxies::parse(trusted).unwrap();
        client_address(peer.parse().unwrap(), xff.iter().copied(), &trusted).to_string()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        assert_eq!(resolve("127.0.0.1", &["6.6.6.6"], &[]), "127.0.0.1");
        assert_eq!(resolve("203.0.113.9", &["6.6.6.6"], &[]), "203.0.113.9");
    }

    #[test]
    fn an_untrusted_peer_cannot_forward() {
        assert_eq!(
            resolve("203.0.113.9", &["6.6.6.6"], &["127.0.0.1"]),
            "203.0.113.9"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let proxies = ["127.0.0.1", "10.0.0.0/8"];
        // The client wrote "6.6.6.6"; nginx appended what it saw.
        assert_eq!(
            resolve("127.0.0.1", &["6.6.6.6, 198.51.100.7"], &proxies),
            "198.51.100.7"
        );
        // Two proxies, and the header split over two lines.
        assert_eq!(
            resolve(
                "127.0.0.1",
                &["6.6.6.6, 198.51.100.7", "10.1.2.3"],
                &proxies
            ),
            "198.51.100.7"
        );
        // Garbage ends the walk at the last trusted hop.
        assert_eq!(
            resolve("127.0.0.1", &["198.51.100.7, nonsense, 10.1.2.3"], &proxies),
            "10.1.2.3"
        );
        // Every hop trusted: the farthest one.
        assert_eq!(resolve("127.0.0.1", &["10.9.9.9"], &proxies), "10.9.9.9");
        assert_eq!(resolve("127.0.0.1", &[], &proxies), "127.0.0.1");
        // IPv4-mapped IPv6 peers and hops with ports.
        assert_eq!(
            resolve("::ffff:127.0.0.1", &["[2001:db8::5]:4711"], &proxies),
            "2001:db8::5"
        );
    }
}
