//! What the console's handlers share: the gateway's channel to billing-svc and the secrets waiting to be
//! shown once.

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
}

impl ConsoleState {
    pub fn new(billing: Channel) -> ConsoleState {
        ConsoleState {
            billing,
            reveals: Arc::default(),
        }
    }
}
