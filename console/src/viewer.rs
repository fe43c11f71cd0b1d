//! Who is looking at a page (CONSOLE.md, "Sessions and security"): the signed-in [`Viewer`], read from the
//! session cookie and checked with billing-svc (`ConsoleService/CurrentSession`) for every page, so a
//! sign-out, an expiry or a revoked key ends the session on every gateway replica at the next page load. Its
//! session token is the bearer of every call a page makes to billing-svc; each state-changing form carries
//! the session's CSRF token, checked here.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use proto::billing::v1 as pb;
use proto::billing::v1::console_service_client::ConsoleServiceClient;
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataValue;

use crate::cookies::{SESSION_COOKIE, cookie};
use crate::error::PageError;
use crate::state::ConsoleState;

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

/// A gRPC request whose bearer is the session `token`.
pub fn bearer_request<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = MetadataValue::try_from(format!("Bearer {token}")) {
        request.metadata_mut().insert("authorization", value);
    }
    request
}
