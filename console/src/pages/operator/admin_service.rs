//! The operator's pages' client of billing-svc's AdminService; each call carries the viewer's session as
//! bearer ([`crate::viewer::Viewer::request`]).

use proto::billing::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

use crate::state::ConsoleState;

pub(super) fn client(state: &ConsoleState) -> AdminServiceClient<Channel> {
    AdminServiceClient::new(state.billing.clone())
}
