//! CSV exports (RFC 4180): a header row, then one row per record, fields quoted when they need it.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// One field, quoted when it holds a comma, a quote or a line break; a leading `=`, `+`, `-` or `@` of
/// free text is prefixed with `'` so a spreadsheet does not run it as a formula.
fn field(text: &str, free_text: bool) -> String {
    let text = if free_text && text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// A CSV document being written.
pub struct Csv {
    text: String,
}

impl Csv {
    pub fn new(header: &[&str]) -> Csv {
        let mut csv = Csv {
            text: String::new(),
        };
        csv.row(header.iter().map(|name| (*name, false)));
        csv
    }

    /// A row of `(text, is free text)` fields.
    pub fn row<'a>(&mut self, fields: impl IntoIterator<Item = (&'a str, bool)>) {
        let line: Vec<String> = fields
            .into_iter()
            .map(|(text, free_text)| field(text, free_text))
            .collect();
        self.text.push_str(&line.join(","));
        self.text.push_str("\r\n");
    }

    /// The download, named `filename`.
    pub fn download(self, filename: &str) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                ),
            ],
            self.text,
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let mut csv = Csv::new(&["a", "b"]);
        csv.row([("1,5", false), ("say \"hi\"", true)]);
        csv.row([("-0.5", false), ("=SUM(A1)", true)]);
        assert_eq!(
            csv.text,
            "a,b\r\n\"1,5\",\"say \"\"hi\"\"\"\r\n-0.5,'=SUM(A1)\r\n"
        );
    }
}
