//! `billing.v1.ConsoleService`: console sessions (CONSOLE.md, "Sessions and security"), opened with a
//! customer key or the admin key.

use proto::billing::v1 as pb;
use proto::billing::v1::console_service_server::ConsoleService;
use tonic::{Request, Response, Status};

use super::{bearer, role_to_pb};
use crate::error::BillingError;
use crate::keys;
use crate::ledger::Ledger;
use crate::sessions::Session;
use crate::sessions::{Principal, Sessions};
use crate::time;
use lifecycle::secret::{ExposeSecret, SecretString};

pub struct ConsoleApi {
    ledger: Ledger,
    sessions: Sessions,
    admin_key: SecretString,
}

impl ConsoleApi {
    pub fn new(ledger: Ledger, sessions: Sessions, admin_key: SecretString) -> ConsoleApi {
        ConsoleApi {
            ledger,
            sessions,
            admin_key,
        }
    }

    /// The session as the console sees it, with its key read now.
    async fn session_to_pb(&self, session: &Session) -> Result<pb::ConsoleSession, BillingError> {
        let mut message = pb::ConsoleSession {
            csrf_token: session.csrf_token.clone(),
            expires_at: Some(time::to_timestamp(session.expires_at)),
            operator: session.api_key_id.is_none(),
            ..Default::default()
        };
        if let Some(key_id) = &session.api_key_id {
            let key = self.ledger.session_caller(key_id).await?.key;
            message.api_key_id = Some(key.id.to_string());
            message.account_id = Some(key.account_id.to_string());
            message.role = role_to_pb(key.role).into();
            message.key_name = key.name;
        }
        Ok(message)
    }

    /// The live session the call's bearer is.
    async fn current<T>(&self, request: &Request<T>) -> Result<Session, BillingError> {
        self.sessions
            .find(bearer(request.metadata())?)
            .await?
            .ok_or(BillingError::SessionEnded)
    }
}

#[tonic::async_trait]
impl ConsoleService for ConsoleApi {
    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        let key = request.into_inner().api_key;
        let principal = if keys::secret_matches(&key, self.admin_key.expose_secret()) {
            Principal::Operator
        } else {
            Principal::Key(self.ledger.authenticate(&key).await?.key.id)
        };
        let opened = self.sessions.open(principal).await?;
        tracing::info!(
            operator = opened.session.api_key_id.is_none(),
            "console sign-in"
        );
        Ok(Response::new(pb::SignInResponse {
            session: Some(self.session_to_pb(&opened.session).await?),
            session_token: opened.token,
        }))
    }

    async fn current_session(
        &self,
        request: Request<pb::CurrentSessionRequest>,
    ) -> Result<Response<pb::ConsoleSession>, Status> {
        let session = self.current(&request).await?;
        Ok(Response::new(self.session_to_pb(&session).await?))
    }

    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        let token = bearer(request.metadata())?.to_string();
        self.sessions.end(&token).await?;
        tracing::info!("console sign-out");
        Ok(Response::new(pb::SignOutResponse {}))
    }
}
