//! What the customer's pages ask billing-svc's AccountService, with the viewer's session as bearer: the
//! client, the month so far, whether the viewer can top up, and how many rows a page of a table or an export
//! holds.

use chrono::{Datelike, Utc};
use proto::billing::v1 as pb;
use proto::billing::v1::account_service_client::AccountServiceClient;
use tonic::transport::Channel;

use crate::error::PageError;
use crate::forms;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// Rows a CSV export may hold.
pub(super) const CSV_ROWS: usize = 50_000;
/// Rows of a page of a table.
pub(super) const PAGE_ROWS: u32 = 50;

pub(super) fn client(state: &ConsoleState) -> AccountServiceClient<Channel> {
    AccountServiceClient::new(state.billing.clone())
}

pub(super) fn this_month() -> pb::TimeRange {
    let today = Utc::now().date_naive();
    let first = today.with_day0(0).unwrap_or(today);
    pb::TimeRange {
        from: Some(forms::start_of(first)),
        to: None,
    }
}

/// Whether this viewer can top up here: an owner, with payments configured.
pub(super) async fn payments_configured(
    state: &ConsoleState,
    viewer: &Viewer,
) -> Result<bool, PageError> {
    if !viewer.owner() {
        return Ok(false);
    }
    Ok(client(state)
        .get_auto_recharge(viewer.request(pb::GetAutoRechargeRequest {}))
        .await?
        .into_inner()
        .payments_configured)
}
