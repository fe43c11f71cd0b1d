//! Signing in and out, and who is looking at a page (CONSOLE.md, "Sessions and security").
//!
//! Signing in sends the key to billing-svc's `ConsoleService/SignIn`, which opens a server-side session; the
//! browser keeps only the session's token, in the cookie `console_session` (`HttpOnly; SameSite=Strict;
//! Path=/console`, `Secure` when the gateway is reached over HTTPS through a proxy that says so in
//! `X-Forwarded-Proto`). The key is never put in a URL, a cookie, browser storage or a log. Every page asks
//! billing-svc for the session, so a sign-out, an expiry or a revoked key ends it on every gateway replica at
//! the next page load. Each state-changing form carries the session's CSRF token; the sign-in form carries a
//! token of its own, tied to a short-lived cookie. A failed sign-in is answered 401, so the gateway's
//! failed-authentication limiter counts it like any other.

use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use proto::billing::v1::console_service_client::ConsoleServiceClient;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::ConsoleState;
use crate::error::PageError;
use crate::render;

/// The session's cookie.
const SESSION_COOKIE: &str = "console_session";
/// The sign-in form's CSRF cookie.
const SIGN_IN_COOKIE: &str = "console_signin";

/// The signed-in viewer of a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The session token, the bearer of the viewer's calls to billing-svc.
    token: String,
    pub csrf: String,
    pub operator: bool,
    pub account_id: String,
    pub key_name: String,
    role: pb::Role,
}

impl Viewer {
    pub fn owner(&self) -> bool {
        !self.operator && self.role == pb::Role::Owner
    }

    /// A gRPC request carrying the viewer's session.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        bearer_request(&self.token, message)
    }

    /// Refuses a viewer who is not an owner of a customer account.
    pub fn require_owner(&self) -> Result<(), PageError> {
        if self.owner() {
            Ok(())
        } else {
            Err(PageError::Forbidden("owner keys"))
        }
    }

    /// Refuses a viewer who is not the operator.
    pub fn require_operator(&self) -> Result<(), PageError> {
        if self.operator {
            Ok(())
        } else {
            Err(PageError::Forbidden("the operator"))
        }
    }

    /// Refuses a customer page to the operator (who has no account of its own).
    pub fn require_customer(&self) -> Result<(), PageError> {
        if self.operator {
            Err(PageError::Forbidden("customer keys"))
        } else {
            Ok(())
        }
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, presented: &str) -> Result<(), PageError> {
        if bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }
}

impl FromRequestParts<ConsoleState> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Viewer, PageError> {
        let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(PageError::SignedOut)?;
        let session = ConsoleServiceClient::new(state.billing.clone())
            .current_session(bearer_request(&token, pb::CurrentSessionRequest {}))
            .await
            .map_err(PageError::from_session_check)?
            .into_inner();
        Ok(Viewer {
            token,
            csrf: session.csrf_token.clone(),
            operator: session.operator,
            account_id: session.account_id.clone().unwrap_or_default(),
            key_name: session.key_name.clone(),
            role: session.role(),
        })
    }
}

fn bearer_request<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {token}")) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The value of cookie `name`, if the request has it.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
fn set_cookie(
    name: &str,
    value: &str,
    max_age_secs: i64,
    secure: bool,
) -> (axum::http::HeaderName, HeaderValue) {
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
pub fn clear_cookie() -> (axum::http::HeaderName, HeaderValue) {
    set_cookie(SESSION_COOKIE, "", 0, false)
}

/// The request came over HTTPS (through a proxy that terminates TLS and says so).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// A random token for the sign-in form's CSRF check.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Deserialize)]
pub struct SignInForm {
    key: String,
    csrf: String,
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// The sign-in form (or the console, for a viewer already signed in).
#[tracing::instrument(skip_all)]
pub async fn sign_in_page(State(state): State<ConsoleState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let live = ConsoleServiceClient::new(state.billing.clone())
            .current_session(bearer_request(&token, pb::CurrentSessionRequest {}))
            .await
            .is_ok();
        if live {
            return Redirect::to("/console/").into_response();
        }
    }
    sign_in_form(&headers, StatusCode::OK, None)
}

fn sign_in_form(headers: &HeaderMap, status: StatusCode, error: Option<&str>) -> Response {
    let token = random_token();
    match render::public_page("sign_in.html", json!({"csrf": token, "error": error})) {
        Ok(page) => (
            status,
            AppendHeaders([
                set_cookie(SIGN_IN_COOKIE, &token, 600, over_https(headers)),
                clear_cookie(),
            ]),
            page,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

/// Signs in with a customer key or the admin key.
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie(&headers, SIGN_IN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(form.csrf.as_bytes().ct_eq(expected.as_bytes())) {
        return sign_in_form(
            &headers,
            StatusCode::FORBIDDEN,
            Some("The form was out of date. Please sign in again."),
        );
    }
    let key = form.key.trim().to_string();
    if key.is_empty() {
        return sign_in_form(
            &headers,
            StatusCode::BAD_REQUEST,
            Some("Enter your API key."),
        );
    }
    let answer = ConsoleServiceClient::new(state.billing.clone())
        .sign_in(pb::SignInRequest { api_key: key })
        .await;
    match answer {
        Ok(answer) => {
            let answer = answer.into_inner();
            let max_age = answer
                .session
                .as_ref()
                .and_then(|session| session.expires_at)
                .map_or(3600, |expires| {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |now| i64::try_from(now.as_secs()).unwrap_or(0));
                    (expires.seconds - now).max(0)
                });
            let secure = over_https(&headers);
            (
                AppendHeaders([
                    set_cookie(SESSION_COOKIE, &answer.session_token, max_age, secure),
                    set_cookie(SIGN_IN_COOKIE, "", 0, secure),
                ]),
                Redirect::to("/console/"),
            )
                .into_response()
        }
        Err(status) if status.code() == Code::Unauthenticated => sign_in_form(
            &headers,
            StatusCode::UNAUTHORIZED,
            Some("That API key is not valid: it may be mistyped, revoked or expired."),
        ),
        Err(status) => PageError::Api(status).into_response(),
    }
}

/// Ends the session.
#[tracing::instrument(skip_all)]
pub async fn sign_out(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    ConsoleServiceClient::new(state.billing.clone())
        .sign_out(viewer.request(pb::SignOutRequest {}))
        .await
        .map_err(PageError::from_session_check)?;
    Ok(([clear_cookie()], Redirect::to("/console/sign-in")).into_response())
}
