//! Cross-origin requests (CORS), configured with Kafka Connect's worker keys:
//! `access.control.allow.origin` (a comma list of origins, `*` for any, and `*`
//! inside an origin matching any run of characters, as Jetty's `CrossOriginFilter`
//! reads it) and `access.control.allow.methods` (default `GET,POST,HEAD`, Kafka
//! Connect's). Without `access.control.allow.origin` no CORS header is sent, so a
//! browser only lets pages of the API's own origin call it.
//!
//! The CORS layer sits outside authentication: a browser's preflight (`OPTIONS`)
//! carries no credentials and is answered by the layer itself.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Methods allowed cross-origin when `access.control.allow.methods` is not set.
const DEFAULT_METHODS: &str = "GET,POST,HEAD";

/// The CORS settings of a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins; `["*"]` is any.
    pub origins: Vec<String>,
    pub methods: Vec<Method>,
}

impl Cors {
    /// Reads the two keys; `Ok(None)` when `access.control.allow.origin` is unset or empty.
    pub fn from_worker(props: &BTreeMap<String, String>) -> Result<Option<Self>, String> {
        let origins: Vec<String> = props
            .get("access.control.allow.origin")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|o| !o.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let methods_text = props
            .get("access.control.allow.methods")
            .map(|m| m.trim())
            .filter(|m| !m.is_empty());
        if origins.is_empty() {
            return match methods_text {
                Some(_) => Err(
                    "access.control.allow.methods: applies only with access.control.allow.origin, which is not set"
                        .into(),
                ),
                None => Ok(None),
            };
        }
        let methods = methods_text
            .unwrap_or(DEFAULT_METHODS)
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("access.control.allow.methods: '{m}' is not an HTTP method"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self { origins, methods }))
    }

    /// The tower-http layer answering preflights and adding the headers.
    pub fn layer(&self) -> CorsLayer {
        let origin = if self.origins.iter().any(|o| o == "*") {
            AllowOrigin::any()
        } else {
            let patterns = self.origins.clone();
            AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin
                    .to_str()
                    .is_ok_and(|o| patterns.iter().any(|p| wildcard_match(p, o)))
            })
        };
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods(self.methods.clone())
            // Jetty's CrossOriginFilter default, plus the header credentials travel in.
            .allow_headers([
                HeaderName::from_static("x-requested-with"),
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::ORIGIN,
                header::AUTHORIZATION,
            ])
    }
}

/// `*` in a pattern matches any run of characters; everything else literally.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafka_connects_keys() {
        let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        assert_eq!(Cors::from_worker(&props(&[])).unwrap(), None);
        let c = Cors::from_worker(&props(&[("access.control.allow.origin", "https://ui.example.com")]))
            .unwrap()
            .unwrap();
        assert_eq!(c.methods, vec![Method::GET, Method::POST, Method::HEAD]);
        let c = Cors::from_worker(&props(&[
            ("access.control.allow.origin", "*"),
            ("access.control.allow.methods", "get, PUT,DELETE"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(c.methods, vec![Method::GET, Method::PUT, Method::DELETE]);
        let e = Cors::from_worker(&props(&[("access.control.allow.methods", "GET")])).unwrap_err();
        assert!(e.contains("access.control.allow.origin"), "{e}");
        let e = Cors::from_worker(&props(&[
            ("access.control.allow.origin", "*"),
            ("access.control.allow.methods", "GET,NOT A METHOD"),
        ]))
        .unwrap_err();
        assert!(e.contains("NOT A METHOD"), "{e}");
    }

    #[test]
    fn origins_match_with_wildcards() {
        assert!(wildcard_match("https://ui.example.com", "https://ui.example.com"));
        assert!(!wildcard_match("https://ui.example.com", "https://evil.com"));
        assert!(wildcard_match("https://*.example.com", "https://a.b.example.com"));
        assert!(!wildcard_match("https://*.example.com", "https://example.com.evil.io"));
        assert!(wildcard_match("http://localhost:*", "http://localhost:3000"));
    }
}
