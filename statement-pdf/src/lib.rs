//! statement-pdf: an account's monthly statement (`billing.v1.Statement`, BILLING.md, "Statements")
//! rendered as an A4 PDF, laid out like a bank statement.
//!
//! The first page opens with the operator, the statement's number, month and period, the account and
//! whether the month is closed; a summary follows (opening balance, each kind of movement with its count
//! of ledger rows, closing balance), then the usage by model, continued on further pages with its header
//! repeated. Every page ends with the account and "Page N of M".
//!
//! Amounts are read with [`money::Money`] and shown exactly, never rounded: two decimals when that is
//! exact, every decimal the amount has otherwise. Text is drawn with the PDF's built-in Helvetica (no font
//! files), so it can be searched and extracted; names are user input and lose what those fonts cannot
//! show.

mod canvas;
mod figures;
mod format;
mod layout;
mod text;

use printpdf::{Mm, PdfDocument, PdfPage, PdfParseErrorSeverity, PdfSaveOptions};
use proto::billing::v1::Statement;

use crate::figures::Figures;
use crate::layout::{PAGE_HEIGHT_MM, PAGE_WIDTH_MM};

/// Why a statement could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An amount field that is not a decimal USD string with at most nine decimals.
    #[error("statement field `{field}`: `{text}` {reason}")]
    Amount {
        field: String,
        text: String,
        reason: money::MoneyError,
    },
    /// A timestamp that is missing or outside what a date can show.
    #[error("statement field `{field}` is missing or out of range")]
    Timestamp { field: &'static str },
    /// A `month` that is not `YYYY-MM`.
    #[error("statement month `{0}` is not YYYY-MM")]
    Month(String),
    /// The PDF writer reported errors (its messages, joined).
    #[error("the PDF writer failed: {0}")]
    Pdf(String),
}

/// The name a statement's PDF is saved under: `statement-<YYYY-MM>-<number>.pdf`.
pub fn file_name(statement: &Statement) -> String {
    format!("statement-{}-{}.pdf", statement.month, statement.number)
}

/// Renders `statement` as an A4 PDF: `operator` is the operator's name shown at the top.
pub fn render(statement: &Statement, operator: &str) -> Result<Vec<u8>, RenderError> {
    let figures = Figures::read(statement)?;
    let pages = layout::pages(&figures, operator)
        .into_iter()
        .map(|ops| PdfPage::new(Mm(PAGE_WIDTH_MM), Mm(PAGE_HEIGHT_MM), ops))
        .collect();
    let title = format!("{operator} statement {} {}", figures.number, figures.month);
    let mut warnings = Vec::new();
    let bytes = PdfDocument::new(&title)
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings);
    let errors: Vec<String> = warnings
        .into_iter()
        .filter(|warning| warning.severity == PdfParseErrorSeverity::Error)
        .map(|warning| warning.msg)
        .collect();
    if errors.is_empty() {
        Ok(bytes)
    } else {
        Err(RenderError::Pdf(errors.join("; ")))
    }
}
