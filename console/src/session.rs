//! Signing in and out (CONSOLE.md, "Sessions and security").
//!
//! Signing in sends the key to billing-svc's `ConsoleService/SignIn`, which opens a server-side session; the
//! browser keeps only the session's token, in the cookie `console_session` (`HttpOnly; SameSite=Strict;
//! Path=/console`, `Secure` when the gateway is reached over HTTPS through a proxy that says so in
//! `X-Forwarded-Proto`; [`crate::cookies`]). The key is never put in a URL, a cookie, browser storage or a log.
//! Every page asks billing-svc for the session ([`crate::viewer`]), so a sign-out, an expiry or a revoked key
//! ends it on every gateway replica at the next page load. Each state-changing form carries the session's
//! CSRF token; the sign-in form carries a token of its own, tied to a short-lived cookie. A failed sign-in is
//! answered 401, so the gateway's failed-authentication limiter counts it like any other.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use proto::billing::v1 as pb;
use proto::billing::v1::console_service_client::ConsoleServiceClient;
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tonic::Code;

use crate::cookies::{
    SESSION_COOKIE, SIGN_IN_COOKIE, clear_cookie, cookie, over_https, set_cookie,
};
use crate::error::PageError;
use crate::render;
use crate::state::ConsoleState;
use crate::viewer::{Viewer, bearer_request};

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
