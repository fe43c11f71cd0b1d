//! What the console's handlers share: the gateway's channel to billing-svc, the secrets waiting to be
//! shown once and the operator's name.

use std::sync::Arc;

use tonic::transport::Channel;

use crate::reveal::Reveals;

/// What the console's handlers share.
#[derive(Clone)]
pub struct ConsoleState {
    /// The gateway's channel to billing-svc.
    pub(crate) billing: Channel,
    /// Secrets waiting for the one page that shows them ([`crate::reveal`]).
    pub(crate) reveals: Arc<Reveals>,
    /// Shown at the top of statements' PDFs (the gateway's `OPERATOR_NAME`).
    pub(crate) operator_name: Arc<str>,
}

impl ConsoleState {
    pub fn new(billing: Channel, operator_name: Arc<str>) -> ConsoleState {
        ConsoleState {
            billing,
            reveals: Arc::default(),
            operator_name,
        }
    }
}
