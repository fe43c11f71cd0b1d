//! What each mailed event says (BILLING.md, "Email"): a subject, a plain-text part and an HTML part made from
//! the event's data. Names and other text from users are escaped in the HTML part.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::events::{Event, EventType};
use money::Money;

/// A message's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A paragraph of a mail, or the weekly trend (its text and its HTML).
enum Block {
    Line(String),
    Trend(String, String),
}

/// The event types that are mailed to the account's address.
pub fn is_mailed(kind: EventType) -> bool {
    matches!(
        kind,
        EventType::BalanceLow
            | EventType::BalanceDepleted
            | EventType::StatementReady
            | EventType::UsageWeeklyReport
    )
}

/// The mail of `event` for the account `account_name`; `None` for a type that is not mailed, and for the
/// `balance.low` of auto-recharge's own threshold (the recharge it starts is the answer to it).
pub fn compose(event: &Event, account_name: &str) -> Option<Mail> {
    let data = &event.data;
    if data["autoRecharge"] == Value::Bool(true) {
        return None;
    }
    let (subject, lines): (String, Vec<Block>) = match event.kind {
        EventType::BalanceLow => (
            format!("Your balance is below {}", amount(data, "threshold")),
            lines([
                format!(
                    "The balance of {account_name} fell below {}.",
                    amount(data, "threshold")
                ),
                format!(
                    "Balance: {}. Available now (less calls in flight): {}.",
                    amount(data, "balance"),
                    amount(data, "available")
                ),
                "Top up before it runs out: calls are refused (HTTP 402) when the credit is gone."
                    .into(),
            ]),
        ),
        EventType::BalanceDepleted => (
            "Your balance is used up".to_string(),
            lines([
                format!(
                    "The credit of {account_name} is used up: new calls are refused (HTTP 402)."
                ),
                format!(
                    "Balance: {}. Charged beyond your credit: {}.",
                    amount(data, "balance"),
                    amount(data, "overage")
                ),
                "Add credit to resume.".into(),
            ]),
        ),
        EventType::StatementReady => {
            let month = text(data, "month");
            (
                format!("Your statement for {month} is ready"),
                lines([
                    format!(
                        "Statement No. {} of {account_name} for {month} is closed.",
                        text(data, "number")
                    ),
                    format!(
                        "Opening balance {}, closing balance {}.",
                        amount(data, "openingBalance"),
                        amount(data, "closingBalance")
                    ),
                    format!(
                        "Download it from the console (Statements) or GET /billing/statements/{month}.pdf."
                    ),
                ]),
            )
        }
        EventType::UsageWeeklyReport => {
            let (trend_text, trend_html) = trend(data);
            (
                format!("Your usage, week of {}", text(data, "weekStart")),
                vec![
                    Block::Line(format!(
                        "{account_name} spent {} on {} requests in the week of {} (the week before: {}).",
                        amount(data, "spend"),
                        text(data, "requests"),
                        text(data, "weekStart"),
                        amount(data, "previousWeekSpend")
                    )),
                    Block::Trend(trend_text, trend_html),
                    Block::Line(format!(
                        "{} so far: {}. At the last seven days' rate, the month ends near {}.",
                        text(data, "month"),
                        amount(data, "monthToDate"),
                        cents(data, "forecastMonthEnd")
                    )),
                    Block::Line(format!("Balance: {}.", amount(data, "balance"))),
                ],
            )
        }
        _ => return None,
    };
    let footer = format!(
        "You get this mail because it is the address of the account {account_name} ({}). Event {}.",
        event.account_id, event.id
    );
    let text_lines: Vec<&str> = lines
        .iter()
        .map(|block| match block {
            Block::Line(line) | Block::Trend(line, _) => line.as_str(),
        })
        .collect();
    let text_part = format!("{}\n\n--\n{footer}\n", text_lines.join("\n\n"));
    let paragraphs: String = lines
        .iter()
        .map(|block| match block {
            Block::Line(line) => format!("<p>{}</p>\n", escape(line)),
            Block::Trend(_, html) => html.clone(),
        })
        .collect();
    let html = format!(
        "<!doctype html>\n<html><body style=\"font-family: sans-serif; color: #1f2933; max-width: 36em\">\n\
         <h2 style=\"font-size: 1.2em\">{}</h2>\n{paragraphs}\
         <p style=\"color: #616e7c; font-size: 0.85em\">{}</p>\n</body></html>\n",
        escape(&subject),
        escape(&footer)
    );
    Some(Mail {
        subject,
        text: text_part,
        html,
    })
}

fn lines<const N: usize>(lines: [String; N]) -> Vec<Block> {
    lines.into_iter().map(Block::Line).collect()
}

/// The week's spend by day: text bars and an HTML table of bars (widths in whole percent of the top day).
fn trend(data: &Value) -> (String, String) {
    let days: Vec<(String, Money)> = data["daily"]
        .as_array()
        .map(|days| {
            days.iter()
                .map(|day| {
                    let spend = day["spend"]
                        .as_str()
                        .and_then(|text| Money::parse_decimal(text).ok())
                        .unwrap_or(Money::ZERO);
                    (day["date"].as_str().unwrap_or_default().to_string(), spend)
                })
                .collect()
        })
        .unwrap_or_default();
    let top = days
        .iter()
        .map(|(_, spend)| spend.decimal())
        .max()
        .unwrap_or(Decimal::ZERO);
    let share = |spend: Money, scale: i64| -> i64 {
        if top <= Decimal::ZERO || spend.decimal() <= Decimal::ZERO {
            return 0;
        }
        (spend.decimal() * Decimal::from(scale) / top)
            .round()
            .try_into()
            .unwrap_or(0)
    };
    let mut text = String::from("Spend by day:");
    let mut rows = String::new();
    for (date, spend) in &days {
        let filled = usize::try_from(share(*spend, 20)).unwrap_or(0);
        text.push_str(&format!(
            "\n  {date}  {}{}  {}",
            "\u{2588}".repeat(filled),
            "\u{2591}".repeat(20 - filled.min(20)),
            spend.dollars()
        ));
        rows.push_str(&format!(
            "<tr><td style=\"padding-right: 1em\">{}</td><td style=\"width: 12em\">\
             <div style=\"background: #3e7bfa; height: 0.8em; width: {}%\"></div></td>\
             <td style=\"text-align: right; padding-left: 1em\">{}</td></tr>\n",
            escape(date),
            share(*spend, 100),
            escape(&spend.dollars())
        ));
    }
    let html = format!(
        "<table style=\"border-collapse: collapse; margin: 1em 0\" aria-label=\"Spend by day\">\n{rows}</table>\n"
    );
    (text, html)
}

/// A field as text (numbers and strings alike).
fn text(data: &Value, field: &str) -> String {
    match &data[field] {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// An amount field for people (`$1,234.50`); as given when it is no amount.
fn amount(data: &Value, field: &str) -> String {
    let raw = text(data, field);
    Money::parse_decimal(&raw).map_or(raw, Money::dollars)
}

/// An estimate for people, to the cent (`$93.17`); as given when it is no amount.
fn cents(data: &Value, field: &str) -> String {
    let raw = text(data, field);
    Money::parse_decimal(&raw)
        .ok()
        .map(|amount| {
            amount
                .decimal()
                .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        })
        .and_then(|rounded| Money::from_decimal(rounded).ok())
        .map_or(raw, Money::dollars)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ids::AccountId;
    use serde_json::json;

    fn event(kind: EventType, data: Value) -> Event {
        Event::new(&AccountId::generate(), kind, data, 0)
    }

    #[test]
    fn a_low_balance_mail_names_the_figures_and_escapes_the_name() {
        let mail = compose(
            &event(
                EventType::BalanceLow,
                json!({"threshold": "5", "balance": "4.2", "available": "3.9"}),
            ),
            "Acme <R&D>",
        )
        .unwrap();
        assert_eq!(mail.subject, "Your balance is below $5.00");
        assert!(
            mail.text.contains("Acme <R&D> fell below $5.00"),
            "{}",
            mail.text
        );
        assert!(mail.text.contains("Balance: $4.20"), "{}", mail.text);
        assert!(mail.html.contains("Acme &lt;R&amp;D&gt;"), "{}", mail.html);
        assert!(!mail.html.contains("<R&D>"));
    }

    #[test]
    fn the_weekly_report_draws_the_trend() {
        let daily: Vec<Value> = (0..7)
            .map(|day| json!({"date": format!("2026-11-{:02}", 30 + day % 2), "spend": format!("{day}")}))
            .collect();
        let mail = compose(
            &event(
                EventType::UsageWeeklyReport,
                json!({"weekStart": "2026-11-30", "spend": "21", "requests": 42, "previousWeekSpend": "7",
                       "daily": daily, "month": "2026-12", "monthToDate": "21", "forecastMonthEnd": "93.126",
                       "balance": "79"}),
            ),
            "Acme",
        )
        .unwrap();
        assert_eq!(mail.subject, "Your usage, week of 2026-11-30");
        assert!(
            mail.text.contains("spent $21.00 on 42 requests"),
            "{}",
            mail.text
        );
        assert!(mail.text.contains("ends near $93.13"), "{}", mail.text);
        assert!(
            mail.text.contains(&"\u{2588}".repeat(20)),
            "the top day is a full bar"
        );
        assert!(mail.html.contains("width: 100%"), "{}", mail.html);
        assert!(mail.html.contains("width: 0%"), "{}", mail.html);
    }

    #[test]
    fn auto_recharges_own_threshold_is_not_mailed() {
        let data =
            json!({"threshold": "5", "balance": "4", "available": "4", "autoRecharge": true});
        assert!(compose(&event(EventType::BalanceLow, data), "Acme").is_none());
    }

    #[test]
    fn other_events_are_not_mailed() {
        assert!(!is_mailed(EventType::KeyCreated));
        assert!(compose(&event(EventType::KeyCreated, json!({})), "Acme").is_none());
    }
}
