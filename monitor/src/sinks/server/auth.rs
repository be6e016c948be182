//! Bearer-token authentication and the rule that keeps a dashboard from
//! being exposed by accident.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts, StatusCode, Uri},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::ApiError;
use super::ServerState;

#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    pub token: Option<String>,
    /// Listening on loopback only: local users are trusted when no token is set.
    pub loopback_only: bool,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "listening on {0} exposes the dashboard beyond this host: set --auth-token \
     (or --auth-token-file), or pass --no-auth to accept that deliberately"
)]
pub struct ExposedWithoutAuth(pub SocketAddr);

impl AuthConfig {
    /// Refuses a non-loopback listener without a token unless `no_auth`.
    pub fn new(listen: SocketAddr, token: Option<String>, no_auth: bool) -> Result<Self, ExposedWithoutAuth> {
        let loopback_only = listen.ip().is_loopback();
        if !loopback_only && token.is_none() && !no_auth {
            return Err(ExposedWithoutAuth(listen));
        }
        Ok(AuthConfig { token, loopback_only })
    }

    /// The token the request presents is valid (or none is required).
    fn check(&self, presented: Option<&str>) -> bool {
        match &self.token {
            None => true,
            Some(token) => presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())),
        }
    }

    /// Viewers may see who else is watching: with a valid token, or on a
    /// loopback-only dashboard.
    fn may_see_viewers(&self, presented: Option<&str>) -> bool {
        match &self.token {
            Some(_) => self.check(presented),
            None => self.loopback_only,
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token from `Authorization: Bearer ...` or `?token=...`.
fn presented_token(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Some(token.trim().to_owned());
        }
    }
    parts.uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Middleware of the authenticated routes: checks the token, then takes
/// `token` out of the query string so that no handler sees it (every route
/// accepts `?token=` alike).
pub(super) async fn require(State(state): State<Arc<ServerState>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let presented = presented_token(&parts);
    if !state.auth.check(presented.as_deref()) {
        return ApiError(StatusCode::UNAUTHORIZED, "missing or wrong token: send Authorization: Bearer TOKEN".into())
            .into_response();
    }
    let may_see_viewers = state.auth.may_see_viewers(presented.as_deref());
    if let Some(uri) = without_token(&parts.uri) {
        parts.uri = uri;
    }
    parts.extensions.insert(Authorized(may_see_viewers));
    next.run(Request::from_parts(parts, body)).await
}

/// The URI without its `token` query parameter; None when it has none.
fn without_token(uri: &Uri) -> Option<Uri> {
    let query = uri.query()?;
    let is_token = |kv: &&str| kv.split_once('=').map_or(*kv, |(k, _)| k) == "token";
    if !query.split('&').any(|kv| is_token(&kv)) {
        return None;
    }
    let rest: Vec<&str> = query.split('&').filter(|kv| !is_token(kv)).collect();
    let path_and_query =
        if rest.is_empty() { uri.path().to_owned() } else { format!("{}?{}", uri.path(), rest.join("&")) };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// Extractor: whether this request may see the viewers list (decided by
/// the auth middleware; false on routes without it).
#[derive(Clone, Copy)]
pub struct Authorized(pub bool);

impl FromRequestParts<Arc<ServerState>> for Authorized {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &Arc<ServerState>) -> Result<Self, Self::Rejection> {
        Ok(parts.extensions.get::<Authorized>().copied().unwrap_or(Authorized(false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_needs_a_token_or_explicit_no_auth() {
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(AuthConfig::new(public, None, false).is_err());
        assert!(AuthConfig::new(public, None, true).is_ok());
        assert!(AuthConfig::new(public, Some("t".into()), false).is_ok());
        assert!(AuthConfig::new(local, None, false).is_ok());
    }

    #[test]
    fn tokens_compare_exactly() {
        let auth = AuthConfig { token: Some("s3cret".into()), loopback_only: true };
        assert!(auth.check(Some("s3cret")));
        assert!(!auth.check(Some("s3cre")));
        assert!(!auth.check(None));
        assert_eq!(percent_decode("a%2Bb%20c"), "a+b c");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
    }

    #[test]
    fn the_token_is_taken_out_of_the_query() {
        let strip = |u: &str| without_token(&u.parse().expect("uri")).map(|u| u.to_string());
        assert_eq!(strip("/api/events?token=x&limit=5").as_deref(), Some("/api/events?limit=5"));
        assert_eq!(strip("/ws?class=icmp&token=a%20b").as_deref(), Some("/ws?class=icmp"));
        assert_eq!(strip("/metrics?token").as_deref(), Some("/metrics"));
        assert_eq!(strip("/api/events?tokens=1"), None);
        assert_eq!(strip("/api/stats"), None);
    }
}
