//! Text as the base-14 fonts can show it: WinAnsi-safe strings, their width in Helvetica, and cutting a
//! string to a width with an ellipsis.
//!
//! The built-in fonts are written with `/WinAnsiEncoding`, one byte a character, and a PDF viewer measures
//! them with Adobe's metrics. Right-aligned figures and cut names therefore need those metrics here: the
//! advance widths below are Helvetica's and Helvetica-Bold's from Adobe's Core 14 AFM files, in 1/1000 em.

/// Helvetica or Helvetica-Bold: the two faces a statement uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Regular,
    Bold,
}

/// Text every character of which the built-in fonts can show; built by [`PdfText::new`], which replaces
/// anything else, so user input (account and model names) cannot reach the PDF as mojibake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PdfText(String);

/// What a statement appends to a cut string; WinAnsi has it (0x85), so it is written as it is.
const ELLIPSIS: char = '\u{2026}';

/// What replaces a character outside printable Latin-1.
const REPLACEMENT: char = '?';

impl PdfText {
    /// `text` with every character outside printable Latin-1 (U+0020..U+007E, U+00A0..U+00FF) replaced by
    /// `?`.
    pub(crate) fn new(text: &str) -> PdfText {
        PdfText(
            text.chars()
                .map(|c| {
                    if is_printable_latin1(c) {
                        c
                    } else {
                        REPLACEMENT
                    }
                })
                .collect(),
        )
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The advance width in points at `size_pt`.
    pub(crate) fn width_pt(&self, weight: Weight, size_pt: f32) -> f32 {
        width_em(&self.0, weight) * size_pt
    }

    /// The text itself if it fits in `max_pt`, else its longest prefix that fits followed by an ellipsis
    /// (only the ellipsis if nothing else fits).
    pub(crate) fn fitted(&self, weight: Weight, size_pt: f32, max_pt: f32) -> PdfText {
        if self.width_pt(weight, size_pt) <= max_pt {
            return self.clone();
        }
        let budget_em = max_pt / size_pt - char_width_em(ELLIPSIS, weight);
        let mut used_em = 0.0;
        let mut cut = String::new();
        for c in self.0.chars() {
            used_em += char_width_em(c, weight);
            if used_em > budget_em {
                break;
            }
            cut.push(c);
        }
        // A name cut after a space would show "name …"; the ellipsis reads better against the last word.
        let mut cut = cut.trim_end().to_owned();
        cut.push(ELLIPSIS);
        PdfText(cut)
    }
}

fn is_printable_latin1(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{ff}')
}

fn width_em(text: &str, weight: Weight) -> f32 {
    text.chars().map(|c| char_width_em(c, weight)).sum()
}

fn char_width_em(c: char, weight: Weight) -> f32 {
    let (ascii, latin1) = match weight {
        Weight::Regular => (&HELVETICA_ASCII, &HELVETICA_LATIN1),
        Weight::Bold => (&HELVETICA_BOLD_ASCII, &HELVETICA_BOLD_LATIN1),
    };
    let units = match c {
        '\u{20}'..='\u{7e}' => ascii[c as usize - 0x20],
        '\u{a0}'..='\u{ff}' => latin1[c as usize - 0xa0],
        ELLIPSIS => 1000,
        // `PdfText::new` let nothing else through: the replacement's width.
        _ => ascii[REPLACEMENT as usize - 0x20],
    };
    f32::from(units) / 1000.0
}

/// Helvetica, U+0020..U+007E.
const HELVETICA_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

/// Helvetica, U+00A0..U+00FF (the no-break space as a space, the soft hyphen as a hyphen).
const HELVETICA_LATIN1: [u16; 96] = [
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333, 400, 584, 333,
    333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611, 667, 667, 667, 667, 667, 667,
    1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, 722, 722, 778, 778, 778, 778, 778, 584, 778,
    722, 722, 722, 722, 667, 667, 611, 556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556,
    278, 278, 278, 278, 556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556,
    500,
];

/// Helvetica-Bold, U+0020..U+007E.
const HELVETICA_BOLD_ASCII: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

/// Helvetica-Bold, U+00A0..U+00FF (the no-break space as a space, the soft hyphen as a hyphen).
const HELVETICA_BOLD_LATIN1: [u16; 96] = [
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333, 400, 584, 333,
    333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611, 722, 722, 722, 722, 722, 722,
    1000, 722, 667, 667, 667, 667, 278, 278, 278, 278, 722, 722, 778, 778, 778, 778, 778, 584, 778,
    722, 722, 722, 722, 667, 667, 611, 556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556,
    278, 278, 278, 278, 611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611,
    556,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_outside_printable_latin1_become_question_marks() {
        let cases = [
            ("Acme GmbH", "Acme GmbH", "ASCII is kept"),
            ("Café Zürich", "Café Zürich", "Latin-1 letters are kept"),
            (
                "東京 team",
                "?? team",
                "CJK is replaced, one mark per character",
            ),
            ("tab\there", "tab?here", "control characters are replaced"),
            (
                "euro €",
                "euro ?",
                "WinAnsi's extras outside Latin-1 are replaced too",
            ),
            ("rocket 🚀", "rocket ?", "an astral character is one mark"),
        ];
        for (input, expected, why) in cases {
            assert_eq!(PdfText::new(input).as_str(), expected, "{why}");
        }
    }

    #[test]
    fn digits_are_556_thousandths_of_an_em() {
        let width = PdfText::new("0123456789").width_pt(Weight::Regular, 10.0);

        assert!((width - 55.6).abs() < 1e-3, "{width}");
    }

    #[test]
    fn a_text_that_fits_is_kept_whole() {
        let text = PdfText::new("gpt-4o");

        assert_eq!(text.fitted(Weight::Regular, 8.0, 100.0), text);
    }

    #[test]
    fn a_long_text_is_cut_with_an_ellipsis_inside_the_width() {
        let text = PdfText::new("a-very-long-model-name-that-does-not-fit-in-the-column");

        let cut = text.fitted(Weight::Regular, 8.0, 60.0);

        assert!(cut.as_str().ends_with('\u{2026}'), "{cut:?}");
        assert!(cut.width_pt(Weight::Regular, 8.0) <= 60.0, "{cut:?}");
        assert!(
            text.as_str()
                .starts_with(cut.as_str().trim_end_matches('\u{2026}'))
        );
    }
}
