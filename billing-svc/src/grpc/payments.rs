//! `billing.v1.PaymentsService`: Stripe's webhook, authenticated by its signature rather than a bearer.

use proto::billing::v1 as pb;
use proto::billing::v1::payments_service_server::PaymentsService;
use tonic::{Request, Response, Status};

use super::{account_to_pb, grant_to_pb, transaction_to_pb};
use crate::error::BillingError;
use crate::ledger::Ledger;
use crate::payments::stripe::{self, Handled};
use crate::time;
use lifecycle::secret::{ExposeSecret, SecretString};

pub struct PaymentsApi {
    ledger: Ledger,
    webhook_secret: Option<SecretString>,
}

impl PaymentsApi {
    pub fn new(ledger: Ledger, webhook_secret: Option<SecretString>) -> PaymentsApi {
        PaymentsApi {
            ledger,
            webhook_secret,
        }
    }
}

#[tonic::async_trait]
impl PaymentsService for PaymentsApi {
    async fn handle_stripe_webhook(
        &self,
        request: Request<pb::StripeWebhookRequest>,
    ) -> Result<Response<pb::StripeWebhookResponse>, Status> {
        let secret = self
            .webhook_secret
            .as_ref()
            .ok_or(BillingError::PaymentsNotConfigured)?;
        let request = request.into_inner();
        stripe::verify(
            secret.expose_secret(),
            &request.payload,
            &request.signature,
            time::now_ms() / 1000,
        )?;
        let (event_type, handled) = stripe::handle(&self.ledger, &request.payload).await?;
        let credited = match handled {
            Handled::Credited(written) => Some(pb::LedgerResponse {
                transaction: Some(transaction_to_pb(&written.transaction)),
                account: Some(account_to_pb(&written.account, None)),
                grant: written.grant.as_ref().map(grant_to_pb),
            }),
            Handled::PaymentFailed | Handled::Ignored => None,
        };
        tracing::info!(%event_type, credited = credited.is_some(), "stripe webhook");
        Ok(Response::new(pb::StripeWebhookResponse {
            event_type,
            credited,
        }))
    }
}
