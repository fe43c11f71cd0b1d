//! A statement read and written out: every amount parsed and every date checked before anything is drawn,
//! so a malformed statement is an error rather than a PDF with a wrong figure.

use chrono::{DateTime, Utc};
use money::Money;
use proto::billing::v1::{Statement, StatementMovement, StatementUsage, TokenClasses};

use crate::RenderError;
use crate::format::{count, dollars, minute, month_title, period};

/// What a statement shows, as text (not yet made WinAnsi-safe: the layout does that as it draws).
#[derive(Debug)]
pub(crate) struct Figures {
    pub(crate) account_id: String,
    pub(crate) account_name: String,
    /// `No. 12`.
    pub(crate) number: String,
    /// `November 2026`.
    pub(crate) month: String,
    pub(crate) period: String,
    /// `Issued 2026-12-01 00:05 UTC`.
    pub(crate) issued: String,
    pub(crate) status: &'static str,
    /// Opening balance, then the movements, each `(label, amount)`.
    pub(crate) summary: Vec<(String, String)>,
    pub(crate) closing_balance: String,
    /// `None` when the month had no volume discount.
    pub(crate) volume_discounts: Option<String>,
    pub(crate) usage: Vec<ModelUsage>,
}

/// One row of "Usage by model".
#[derive(Debug)]
pub(crate) struct ModelUsage {
    pub(crate) model: String,
    /// Requests, input tokens, output tokens, input cost, output cost, fees, charged: the table's
    /// right-aligned columns, in order.
    pub(crate) cells: [String; 7],
    /// The non-zero token classes and the volume discount, `cached input 1,200 · reasoning 80`; empty when
    /// there are none.
    pub(crate) detail: String,
}

impl Figures {
    pub(crate) fn read(statement: &Statement) -> Result<Figures, RenderError> {
        let month = month_title(&statement.month)
            .ok_or_else(|| RenderError::Month(statement.month.clone()))?;
        let start = instant("period_start", statement.period_start.as_ref())?;
        let end = instant("period_end", statement.period_end.as_ref())?;
        let issued_at = instant("issued_at", statement.issued_at.as_ref())?;
        let movements = [
            ("Credits purchased", "credits", &statement.credits),
            ("Promotional grants", "grants", &statement.grants),
            ("Usage", "usage", &statement.usage),
            ("Refunds", "refunds", &statement.refunds),
            ("Adjustments", "adjustments", &statement.adjustments),
            ("Expired credit", "expiries", &statement.expiries),
        ];
        let mut summary = vec![(
            "Opening balance".to_owned(),
            dollars(amount("opening_balance", &statement.opening_balance)?),
        )];
        for (label, field, movement) in movements {
            summary.push(movement_line(label, field, movement.as_ref())?);
        }
        let volume_discounts = amount("volume_discounts", &statement.volume_discounts)?;
        let usage = statement
            .usage_by_model
            .iter()
            .enumerate()
            .map(|(i, usage)| model_usage(i, usage))
            .collect::<Result<_, _>>()?;
        Ok(Figures {
            account_id: statement.account_id.clone(),
            account_name: statement.account_name.clone(),
            number: format!("No. {}", statement.number),
            month,
            period: period(start, end),
            issued: format!("Issued {}", minute(issued_at)),
            status: if statement.closed {
                "Closed"
            } else {
                "Open (current month, figures change until it closes)"
            },
            summary,
            closing_balance: dollars(amount("closing_balance", &statement.closing_balance)?),
            volume_discounts: (!volume_discounts.is_zero()).then(|| dollars(volume_discounts)),
            usage,
        })
    }
}

/// `Usage (1,234)` and the movement's amount; an absent movement is proto3's default, none.
fn movement_line(
    label: &str,
    field: &str,
    movement: Option<&StatementMovement>,
) -> Result<(String, String), RenderError> {
    let (text, rows) = movement.map_or(("", 0), |m| (m.amount.as_str(), m.count));
    let amount = amount(&format!("{field}.amount"), text)?;
    Ok((format!("{label} ({})", count(rows)), dollars(amount)))
}

fn model_usage(index: usize, usage: &StatementUsage) -> Result<ModelUsage, RenderError> {
    let field = |name: &str| format!("usage_by_model[{index}].{name}");
    let discount = amount(&field("volume_discount"), &usage.volume_discount)?;
    let mut detail = token_classes(usage.classes.as_ref().unwrap_or(&TokenClasses::default()));
    if !discount.is_zero() {
        detail.push(format!("volume discount {}", dollars(discount)));
    }
    Ok(ModelUsage {
        model: usage.model.clone(),
        cells: [
            count(usage.requests),
            count(usage.input_tokens),
            count(usage.output_tokens),
            dollars(amount(&field("input_cost"), &usage.input_cost)?),
            dollars(amount(&field("output_cost"), &usage.output_cost)?),
            dollars(amount(&field("request_fees"), &usage.request_fees)?),
            dollars(amount(&field("charged"), &usage.charged)?),
        ],
        detail: detail.join(" \u{b7} "),
    })
}

/// The non-zero classes, `cached input 1,200`, in the order of `TokenClasses`.
fn token_classes(classes: &TokenClasses) -> Vec<String> {
    [
        ("cached input", classes.cached_input_tokens),
        ("cache writes", classes.cache_write_tokens),
        ("1 h cache writes", classes.cache_write_1h_tokens),
        ("reasoning", classes.reasoning_tokens),
        ("audio in", classes.audio_input_tokens),
        ("audio out", classes.audio_output_tokens),
    ]
    .into_iter()
    .filter(|(_, tokens)| *tokens > 0)
    .map(|(name, tokens)| format!("{name} {}", count(tokens)))
    .collect()
}

/// A decimal USD field; empty is proto3's default for an unset string and reads as zero.
fn amount(field: &str, text: &str) -> Result<Money, RenderError> {
    if text.is_empty() {
        return Ok(Money::ZERO);
    }
    Money::parse_decimal(text).map_err(|reason| RenderError::Amount {
        field: field.to_owned(),
        text: text.to_owned(),
        reason,
    })
}

fn instant(
    field: &'static str,
    timestamp: Option<&prost_types::Timestamp>,
) -> Result<DateTime<Utc>, RenderError> {
    timestamp
        .and_then(|t| DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
        .ok_or(RenderError::Timestamp { field })
}
