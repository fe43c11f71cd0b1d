//! An account's volume tiers form (BILLING.md, "Volume tiers"): reading its rows, and replacing the tiers.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use proto::billing::v1 as pb;
use serde_json::{Value, json};

use crate::error::PageError;
use crate::forms;
use crate::pages::operator::account::{BLANK_TIER_ROWS, MAX_TIERS, answer};
use crate::pages::operator::admin_service::client;
use crate::state::ConsoleState;
use crate::viewer::Viewer;

/// Replaces the account's volume tiers with the form's rows (BILLING.md, "Volume tiers"); rows left empty are
/// dropped, so a form with every row empty removes them. The fields come as pairs in the page's order
/// (`from_monthly_spend` then `percent_off`, one pair per row), so they are read as a list rather than a
/// struct.
pub async fn set_tiers(
    State(state): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let csrf = fields
        .iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    viewer.check_csrf(csrf)?;
    viewer.require_operator()?;
    let sent = async {
        let tiers = discount_tiers(&fields)?;
        client(&state)
            .update_account(viewer.request(pb::UpdateAccountRequest {
                account_id: id.clone(),
                discount_tiers: Some(pb::DiscountTiers { tiers }),
                email: None,
            }))
            .await?;
        Ok(())
    };
    let sent = sent.await;
    // The rows as typed, in the page's order, to send the form back after a refusal.
    let column = |field: &'static str| fields.iter().filter(move |(name, _)| name == field);
    let rows: Vec<Value> = column("from_monthly_spend")
        .zip(column("percent_off"))
        .map(|((_, from), (_, percent))| json!({"from": from, "percent": percent}))
        .collect();
    answer(
        &state,
        &viewer,
        &id,
        sent,
        ("tiers", "tiers"),
        TIERS_FIELDS,
        json!({"rows": rows}),
    )
    .await
}

/// The tiers form's fields: billing-svc names a column but not the row (its message goes above the form);
/// the console's own check names the row's input itself ([`PageError::InvalidField`]).
const TIERS_FIELDS: forms::Fields = &[];

/// The tiers the form's rows describe, in the page's order.
fn discount_tiers(fields: &[(String, String)]) -> Result<Vec<pb::DiscountTier>, PageError> {
    let column = |field: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(name, _)| name == field)
            .map(|(_, value)| value.trim())
            .collect()
    };
    let (spends, percents) = (column("from_monthly_spend"), column("percent_off"));
    if spends.len() != percents.len() {
        return Err(PageError::Invalid(
            "each tier needs a monthly spend and a percent off".to_string(),
        ));
    }
    if spends.len() > MAX_TIERS + BLANK_TIER_ROWS {
        return Err(PageError::Invalid(format!(
            "an account may have at most {MAX_TIERS} tiers"
        )));
    }
    let mut tiers = Vec::new();
    for (index, (spend, percent)) in spends.into_iter().zip(percents).enumerate() {
        let row = index + 1;
        // A refusal beside the row's input (its id on the page: `tier_from_2`, `tier_percent_2`).
        let refused = |column: &str, message: String| PageError::InvalidField {
            field: format!("tier_{column}_{row}"),
            message,
        };
        let percent = percent.trim_end_matches('%').trim();
        match (spend.is_empty(), percent.is_empty()) {
            (true, true) => continue,
            (false, true) => {
                return Err(refused(
                    "percent",
                    format!("Tier {row}: enter the percent off too, or empty the row"),
                ));
            }
            (true, false) => {
                return Err(refused(
                    "from",
                    format!("Tier {row}: enter the monthly spend too, or empty the row"),
                ));
            }
            (false, false) => {}
        }
        // Only the reading of what was typed: the rules of a tier (threshold, percent range) are
        // billing-svc's.
        if spend.parse::<rust_decimal::Decimal>().is_err() {
            return Err(refused(
                "from",
                format!("Tier {row}: enter the monthly spend as an amount in USD, such as 100"),
            ));
        }
        if percent.parse::<rust_decimal::Decimal>().is_err() {
            return Err(refused(
                "percent",
                format!("Tier {row}: enter the percent off as a number, such as 10 or 2.5"),
            ));
        }
        tiers.push(pb::DiscountTier {
            from_monthly_spend: spend.to_string(),
            percent_off: percent.to_string(),
        });
    }
    if tiers.len() > MAX_TIERS {
        return Err(PageError::Invalid(format!(
            "an account may have at most {MAX_TIERS} tiers"
        )));
    }
    Ok(tiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tier_rows_left_empty_are_ignored() {
        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .flat_map(|(from, percent)| {
                    [
                        ("from_monthly_spend".to_string(), from.to_string()),
                        ("percent_off".to_string(), percent.to_string()),
                    ]
                })
                .collect()
        };
        let tiers = discount_tiers(&fields(&[("100", "5"), ("", ""), (" 1000 ", "10 %")]))
            .expect("two tiers");
        let read: Vec<(&str, &str)> = tiers
            .iter()
            .map(|tier| (tier.from_monthly_spend.as_str(), tier.percent_off.as_str()))
            .collect();
        assert_eq!(read, [("100", "5"), ("1000", "10")]);

        let none = discount_tiers(&fields(&[("", ""), ("", "")])).expect("no tiers");
        assert!(none.is_empty(), "every row empty removes the tiers");

        for (pairs, field, why) in [
            (
                &[("100", "")][..],
                "tier_percent_1",
                "a threshold without a percent",
            ),
            (
                &[("", ""), ("", "5")][..],
                "tier_from_2",
                "a percent without a threshold",
            ),
            (
                &[("100", "ten")][..],
                "tier_percent_1",
                "a percent that is not a number",
            ),
            (
                &[("lots", "5")][..],
                "tier_from_1",
                "a threshold that is not an amount",
            ),
        ] {
            match discount_tiers(&fields(pairs)) {
                Err(PageError::InvalidField { field: refused, .. }) => {
                    assert_eq!(refused, field, "{why} is refused beside its input");
                }
                other => panic!("{why} is refused beside its input: {other:?}"),
            }
        }
    }
}
