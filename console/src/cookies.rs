//! The console's cookies (CONSOLE.md, "Sessions and security"): the session's token (`console_session`) and
//! the sign-in form's CSRF token (`console_signin`), each `HttpOnly; SameSite=Strict; Path=/console`, and
//! `Secure` when the gateway is reached over HTTPS through a proxy that says so in `X-Forwarded-Proto`.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The session's cookie.
pub const SESSION_COOKIE: &str = "console_session";
/// The sign-in form's CSRF cookie.
pub const SIGN_IN_COOKIE: &str = "console_signin";

/// The value of cookie `name`, if the request has it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` for a console cookie; `max_age_secs` 0 removes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age_secs: i64,
    secure: bool,
) -> (HeaderName, HeaderValue) {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    (
        SET_COOKIE,
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("")),
    )
}

/// Removes the session cookie.
pub fn clear_cookie() -> (HeaderName, HeaderValue) {
    set_cookie(SESSION_COOKIE, "", 0, false)
}

/// The request came over HTTPS (through a proxy that terminates TLS and says so).
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}
