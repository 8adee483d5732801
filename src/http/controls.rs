//! Control characters are refused at the edge, before any handler, domain
//! type or query sees them: NUL cannot even be stored in PostgreSQL text
//! (a 500 there), and no name, address, search or token holds one. Paths
//! and query strings are checked here for every route; JSON strings by the
//! `Json` extractor through [`json_field_with_control`]. Tab and line
//! breaks stay allowed in JSON (multi-line notes and descriptions); the
//! domain's `text` decides where they belong.

use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{domain::is_refused_control, error::Error};

const MESSAGE: &str = "must not contain control characters";

/// Middleware: 422 when the percent-decoded path or any query parameter
/// holds a control character (tab and line breaks included: none belongs
/// in a URL).
pub async fn refuse_in_uri(req: Request, next: Next) -> Response {
    let uri = req.uri();
    if has_control(&percent_decode(uri.path())) {
        return Error::field("path", MESSAGE).into_response();
    }
    if let Some(query) = uri.query() {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if has_control(&name) {
                return Error::field("query", MESSAGE).into_response();
            }
            if has_control(&value) {
                return Error::field(&name, MESSAGE).into_response();
            }
        }
    }
    next.run(req).await
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

/// Decodes `%XX` escapes; invalid UTF-8 becomes U+FFFD, which is harmless.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The field of a JSON body whose string (or key) holds a refused control
/// character, if any. A byte scan first, so clean bodies (nearly all) are
/// not parsed twice: in JSON text, C0 controls only appear as `\u00XX`
/// escapes, DEL and C1 controls raw.
pub fn json_field_with_control(body: &[u8]) -> Option<String> {
    if !may_hold_control(body) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let mut path = String::new();
    find(&value, &mut path).then(|| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path
        }
    })
}

fn may_hold_control(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            // An escape: `\uXXXX` may name a control; any other is two bytes.
            b'\\' => {
                if body.get(i + 1) == Some(&b'u') {
                    let code = body
                        .get(i + 2..i + 6)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok());
                    if code
                        .and_then(char::from_u32)
                        .is_some_and(is_refused_control)
                    {
                        return true;
                    }
                    i += 6;
                } else {
                    i += 2;
                }
            }
            0x7f => return true,
            // U+0080 to U+009F in UTF-8.
            0xc2 if body.get(i + 1).is_some_and(|b| (0x80..=0x9f).contains(b)) => return true,
            _ => i += 1,
        }
    }
    false
}

fn find(value: &serde_json::Value, path: &mut String) -> bool {
    let bad = |s: &str| s.chars().any(is_refused_control);
    match value {
        serde_json::Value::String(s) => bad(s),
        serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, v)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = find(v, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        serde_json::Value::Object(fields) => fields.iter().any(|(k, v)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let found = bad(k) || find(v, path);
            if !found {
                path.truncate(len);
            }
            found
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_escaped_and_raw_controls_and_names_the_field() {
        let field = |s: &str| json_field_with_control(s.as_bytes());
        assert_eq!(
            field(r#"{"email":"a\u0000@b.org"}"#).as_deref(),
            Some("email")
        );
        assert_eq!(
            field(r#"{"a":{"b":["ok","x\u001b"]}}"#).as_deref(),
            Some("a.b[1]")
        );
        assert_eq!(field("{\"name\":\"x\u{85}\"}").as_deref(), Some("name"));
        assert_eq!(field("{\"name\":\"x\u{7f}\"}").as_deref(), Some("name"));
        // Line breaks and tabs are for the domain to judge; an escaped
        // backslash followed by "u0000" is plain text.
        assert_eq!(field(r#"{"note":"a\nb\tc\r\n","x":"\\u0000"}"#), None);
        assert_eq!(field(r#"{"name":"Zoë \u00e9"}"#), None);
    }

    #[test]
    fn decodes_paths() {
        assert_eq!(percent_decode("/a%00b%2"), "/a\0b%2");
        assert!(has_control(&percent_decode("/logos/x%0a.png")));
        assert!(!has_control(&percent_decode("/logos/%C3%A9.png")));
    }
}
