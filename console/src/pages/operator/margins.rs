//! Revenue, provider cost and margin as the operator's pages show them (the `margins.html` table of the
//! overview and of an account's page). Provider cost and margin come only from AdminService, which fills
//! them; they are the operator's figures and no customer page shows them.

use proto::billing::v1 as pb;
use serde_json::{Value, json};

/// Revenue (the usage's total cost), provider cost and margin of a set of calls, as AdminService gives them.
/// An empty provider cost or margin (records made before provider cost was kept) is shown as unknown, never
/// as zero.
pub(super) fn margins(totals: Option<&pb::UsageTotals>) -> Value {
    let totals = totals.cloned().unwrap_or_default();
    let known = |text: String| (!text.is_empty()).then_some(text);
    json!({
        "requests": totals.requests,
        "tokens": totals.total_tokens,
        "revenue": if totals.total_cost.is_empty() { "0".to_string() } else { totals.total_cost },
        "provider_cost": known(totals.provider_cost),
        "margin": known(totals.margin),
    })
}
