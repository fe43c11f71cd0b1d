//! A statement rendered and read back: a PDF, the right number of pages, and every figure as text.

// The helpers below fail the test that calls them, as an assertion would.
#![allow(clippy::expect_used)]

use printpdf::{PdfDocument, PdfParseOptions};
use prost_types::Timestamp;
use proto::billing::v1::{Statement, StatementMovement, StatementUsage, TokenClasses};
use statement_pdf::{RenderError, render};

const NOVEMBER_2026: i64 = 1_793_491_200;
const DECEMBER_2026: i64 = 1_796_083_200;
const FIVE_PAST_MIDNIGHT_DECEMBER_1: i64 = 1_796_083_500;

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

fn movement(amount: &str, count: u64) -> Option<StatementMovement> {
    Some(StatementMovement {
        amount: amount.to_owned(),
        count,
    })
}

fn model(
    name: &str,
    charged: &str,
    classes: TokenClasses,
    volume_discount: &str,
) -> StatementUsage {
    StatementUsage {
        model: name.to_owned(),
        requests: 1_204,
        input_tokens: 3_456_789,
        output_tokens: 987_654,
        classes: Some(classes),
        input_cost: "8.641972500".to_owned(),
        output_cost: "9.876540000".to_owned(),
        request_fees: "0.120400000".to_owned(),
        charged: charged.to_owned(),
        volume_discount: volume_discount.to_owned(),
    }
}

/// A closed November with every kind of movement and three models, one of them with a long name.
fn november() -> Statement {
    Statement {
        account_id: "0b8f5c1e-7a4d-4c51-9f3e-2d6a8b1c4e70".to_owned(),
        account_name: "Acme Research Ltd".to_owned(),
        month: "2026-11".to_owned(),
        number: 7,
        period_start: at(NOVEMBER_2026),
        period_end: at(DECEMBER_2026),
        closed: true,
        issued_at: at(FIVE_PAST_MIDNIGHT_DECEMBER_1),
        opening_balance: "250.000000000".to_owned(),
        credits: movement("500.000000000", 2),
        grants: movement("25.000000000", 1),
        usage: movement("-187.654321987", 4_321),
        refunds: movement("1.250000000", 1),
        adjustments: movement("-10.000000000", 1),
        expiries: movement("-5.000000000", 1),
        closing_balance: "573.595678013".to_owned(),
        usage_by_model: vec![
            model(
                "gpt-4o",
                "120.500000000",
                TokenClasses {
                    cached_input_tokens: 1_200_000,
                    reasoning_tokens: 0,
                    ..TokenClasses::default()
                },
                "3.210000000",
            ),
            model(
                "claude-sonnet-4-5",
                "60.154321987",
                TokenClasses {
                    cache_write_tokens: 400_000,
                    cache_write_1h_tokens: 100_000,
                    reasoning_tokens: 52_000,
                    ..TokenClasses::default()
                },
                "0",
            ),
            model(
                "accounts/fireworks/models/llama-v3p1-405b-instruct-long-context-preview",
                "7.000000000",
                TokenClasses::default(),
                "",
            ),
        ],
        volume_discounts: "3.210000000".to_owned(),
    }
}

/// The current month, still open, with `models` models and nothing else.
fn busy_month(models: usize) -> Statement {
    let usage_by_model = (0..models)
        .map(|i| {
            model(
                &format!("model-{i:03}"),
                "0.000000001",
                TokenClasses {
                    audio_input_tokens: 10,
                    audio_output_tokens: 20,
                    ..TokenClasses::default()
                },
                "",
            )
        })
        .collect();
    Statement {
        closed: false,
        usage_by_model,
        ..november()
    }
}

/// The rendered PDF's text, one string per page.
fn pages_text(pdf: &[u8]) -> Vec<String> {
    let mut warnings = Vec::new();
    let document = PdfDocument::parse(pdf, &PdfParseOptions::default(), &mut warnings)
        .expect("the rendered PDF parses");
    document
        .extract_text()
        .into_iter()
        .map(|chunks| chunks.join("\n"))
        .collect()
}

/// Keeps a rendering where a person can open it (`target/` of the workspace); failing to is no failure.
fn keep(name: &str, pdf: &[u8]) {
    let path = format!("{}/../target/{name}", env!("CARGO_MANIFEST_DIR"));
    let _ = std::fs::write(path, pdf);
}

#[test]
fn a_statement_with_every_movement_shows_its_figures_on_one_page() {
    let pdf = render(&november(), "Example AI Platform").expect("renders");
    keep("statement-sample.pdf", &pdf);

    assert!(pdf.starts_with(b"%PDF-"));
    let pages = pages_text(&pdf);
    assert_eq!(pages.len(), 1);
    let text = &pages[0];
    for expected in [
        "Example AI Platform",
        "Statement",
        "No. 7",
        "November 2026",
        "2026-11-01 to 2026-11-30 (UTC)",
        "Issued 2026-12-01 00:05 UTC",
        "Closed",
        "Acme Research Ltd",
        "Account 0b8f5c1e-7a4d-4c51-9f3e-2d6a8b1c4e70",
        "Opening balance",
        "$250.00",
        "Credits purchased (2)",
        "$500.00",
        "Promotional grants (1)",
        "$25.00",
        "Usage (4,321)",
        "-$187.654321987",
        "Refunds (1)",
        "$1.25",
        "Adjustments (1)",
        "-$10.00",
        "Expired credit (1)",
        "-$5.00",
        "Closing balance",
        "$573.595678013",
        "Volume discounts included in usage: $3.21",
        "Usage by model",
        "gpt-4o",
        "claude-sonnet-4-5",
        "accounts/fireworks/models/",
        "1,204",
        "3,456,789",
        "987,654",
        "$8.6419725",
        "$9.87654",
        "$0.1204",
        "$120.50",
        "$60.154321987",
        "$7.00",
        "cached input 1,200,000",
        "volume discount $3.21",
        "cache writes 400,000",
        "1 h cache writes 100,000",
        "reasoning 52,000",
        "Page 1 of 1",
    ] {
        assert!(
            text.contains(expected),
            "`{expected}` missing from:\n{text}"
        );
    }
    assert!(
        !text.contains("long-context-preview"),
        "the long model name is cut to its column"
    );
}

#[test]
fn a_hundred_and_fifty_models_continue_on_numbered_pages_with_the_table_header_repeated() {
    let pdf = render(&busy_month(150), "Example AI Platform").expect("renders");
    keep("statement-sample-150-models.pdf", &pdf);

    assert!(pdf.starts_with(b"%PDF-"));
    let pages = pages_text(&pdf);
    let total = pages.len();
    assert!(total >= 3, "150 models on {total} pages");
    for (i, text) in pages.iter().enumerate() {
        let footer = format!("Page {} of {total}", i + 1);
        assert!(text.contains(&footer), "page {}: no `{footer}`", i + 1);
        assert!(
            text.contains("Output tokens"),
            "page {}: no table header",
            i + 1
        );
    }
    assert!(pages[0].contains("Open (current month, figures change until it closes)"));
    assert!(pages[1].contains("(continued)"));
    let all = pages.join("\n");
    for i in 0..150 {
        let name = format!("model-{i:03}");
        assert_eq!(all.matches(&name).count(), 1, "{name} shown once");
    }
    assert!(all.contains("audio in 10"));
    assert!(all.contains("audio out 20"));
    assert!(all.contains("$0.000000001"));
}

#[test]
fn a_month_without_usage_says_so() {
    let statement = Statement {
        usage_by_model: Vec::new(),
        ..november()
    };

    let pages = pages_text(&render(&statement, "Example AI Platform").expect("renders"));

    assert_eq!(pages.len(), 1);
    assert!(pages[0].contains("No usage this month."));
}

#[test]
fn names_outside_latin1_are_shown_with_question_marks() {
    let statement = Statement {
        account_name: "Café 東京".to_owned(),
        ..november()
    };

    let pages = pages_text(&render(&statement, "Opérateur").expect("renders"));

    assert!(pages[0].contains("Café ??"), "{}", pages[0]);
    assert!(pages[0].contains("Opérateur"), "{}", pages[0]);
}

#[test]
fn a_malformed_statement_is_refused_naming_what_is_wrong() {
    let cases: [(Statement, &str); 4] = [
        (
            Statement {
                closing_balance: "12,50".to_owned(),
                ..november()
            },
            "statement field `closing_balance`: `12,50` is not a decimal number",
        ),
        (
            Statement {
                usage_by_model: vec![model("gpt-4o", "0.0000000001", TokenClasses::default(), "")],
                ..november()
            },
            "statement field `usage_by_model[0].charged`: `0.0000000001` has more than 9 decimal places",
        ),
        (
            Statement {
                period_end: None,
                ..november()
            },
            "statement field `period_end` is missing or out of range",
        ),
        (
            Statement {
                month: "2026-13".to_owned(),
                ..november()
            },
            "statement month `2026-13` is not YYYY-MM",
        ),
    ];
    for (statement, expected) in cases {
        let error = render(&statement, "Example AI Platform").expect_err(expected);

        assert!(
            matches!(
                error,
                RenderError::Amount { .. } | RenderError::Timestamp { .. } | RenderError::Month(_)
            ),
            "{error:?}"
        );
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn long_names_and_wide_figures_still_render_on_the_page() {
    let wide = StatementUsage {
        requests: 12_345_678_901,
        input_tokens: 999_999_999_999,
        output_tokens: 999_999_999_999,
        input_cost: "1234567.123456789".to_owned(),
        output_cost: "1234567.123456789".to_owned(),
        request_fees: "123456.123456789".to_owned(),
        charged: "2592590.370370367".to_owned(),
        ..model(
            &"very-long-model-name-".repeat(10),
            "0",
            TokenClasses::default(),
            "",
        )
    };
    let statement = Statement {
        account_name: "The Extremely Long Account Name of a Research Group 東京 ".repeat(4),
        opening_balance: "-1234567890.123456789".to_owned(),
        usage_by_model: vec![wide; 3],
        ..november()
    };

    let pdf = render(&statement, &"Operator With A Very Long Name ".repeat(5)).expect("renders");
    keep("statement-sample-wide.pdf", &pdf);

    let pages = pages_text(&pdf);
    assert_eq!(pages.len(), 1);
    for expected in [
        "-$1,234,567,890.123456789",
        "$2,592,590.370370367",
        "999,999,999,999",
    ] {
        assert!(
            pages[0].contains(expected),
            "`{expected}` missing from:\n{}",
            pages[0]
        );
    }
}
