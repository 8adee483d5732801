//! Refusing forged form posts. A browser says where a request comes from
//! (`Sec-Fetch-Site`, and `Origin` on every cross-origin POST), and a page
//! on another site cannot change either. A form post is accepted when it
//! comes from the site itself: the configured public site URL, or the host
//! the request was sent to. A request with neither header is not from a
//! modern browser, so it is no forgery (and a script could send it anyway).
//! This is the check Go's `http.CrossOriginProtection` makes.

use axum::http::{HeaderMap, header};

use crate::error::Error;

/// `scheme://host[:port]` of a URL, lower-cased, without a default port.
fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url.trim()).ok()?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Refuses a form post that a page on another site made the visitor's
/// browser send. `site_url` is the site's public URL (`pages.site_url`).
pub fn same_site_form(headers: &HeaderMap, site_url: &str) -> Result<(), Error> {
    let text = |name| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("\u{0}").trim().to_ascii_lowercase())
    };
    let origin = text(header::ORIGIN).filter(|o| !o.is_empty());
    let from_us = |origin: &str| {
        let site = origin_of(site_url);
        let host = text(header::HOST);
        origin_of(origin).is_some_and(|o| {
            Some(&o) == site.as_ref()
                || host
                    .as_deref()
                    .is_some_and(|h| o.split_once("://").map(|(_, authority)| authority) == Some(h))
        })
    };
    if let Some(site) = text(axum::http::HeaderName::from_static("sec-fetch-site")) {
        // "none": the visitor's own action (a bookmark, the address bar).
        return match site.as_str() {
            "same-origin" | "none" => Ok(()),
            _ if origin.as_deref().is_some_and(from_us) => Ok(()),
            _ => Err(Error::CrossSite),
        };
    }
    match origin.as_deref() {
        None => Ok(()),
        Some(o) if from_us(o) => Ok(()),
        Some(_) => Err(Error::CrossSite),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    const SITE: &str = "https://fund.example.social/";

    #[test]
    fn posts_from_the_site_pass() {
        for h in [
            headers(&[("origin", "https://fund.example.social")]),
            headers(&[("origin", "https://FUND.example.social:443")]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
            headers(&[
                ("origin", "http://127.0.0.1:8080"),
                ("host", "127.0.0.1:8080"),
            ]),
            // Not a browser: nothing to forge.
            headers(&[]),
        ] {
            assert!(same_site_form(&h, SITE).is_ok(), "{h:?}");
        }
    }

    #[test]
    fn posts_from_elsewhere_are_refused() {
        for h in [
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "https://fund.example.social.evil.example")]),
            headers(&[("origin", "http://fund.example.social")]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[
                ("sec-fetch-site", "same-site"),
                ("origin", "https://example.social"),
            ]),
            headers(&[
                ("origin", "https://evil.example"),
                ("host", "fund.example.social"),
            ]),
        ] {
            assert!(
                matches!(same_site_form(&h, SITE), Err(Error::CrossSite)),
                "{h:?}"
            );
        }
    }
}
