//! One page's drawing operations: text at a baseline (left- or right-aligned) and horizontal rules, in
//! points from the page's bottom-left corner.

use printpdf::{
    BuiltinFont, Color, Greyscale, Line, LinePoint, Op, PdfFontHandle, Point, Pt, TextItem,
};

use crate::text::{PdfText, Weight};

/// How a piece of text looks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) weight: Weight,
    pub(crate) size_pt: f32,
    pub(crate) ink: Ink,
}

impl Style {
    pub(crate) const fn regular(size_pt: f32) -> Style {
        Style {
            weight: Weight::Regular,
            size_pt,
            ink: Ink::Black,
        }
    }

    pub(crate) const fn bold(size_pt: f32) -> Style {
        Style {
            weight: Weight::Bold,
            size_pt,
            ink: Ink::Black,
        }
    }

    pub(crate) const fn grey(size_pt: f32) -> Style {
        Style {
            weight: Weight::Regular,
            size_pt,
            ink: Ink::Grey,
        }
    }

    /// `text`'s width in this style.
    pub(crate) fn width_pt(self, text: &PdfText) -> f32 {
        text.width_pt(self.weight, self.size_pt)
    }

    /// `text` cut with an ellipsis to fit `max_pt` in this style.
    pub(crate) fn fit(self, text: &PdfText, max_pt: f32) -> PdfText {
        text.fitted(self.weight, self.size_pt, max_pt)
    }
}

/// The greys a statement uses: black for figures, grey for what explains them, light grey for hairlines.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ink {
    Black,
    Grey,
    Light,
}

impl Ink {
    fn color(self) -> Color {
        let level = match self {
            Ink::Black => 0.0,
            Ink::Grey => 0.4,
            Ink::Light => 0.8,
        };
        Color::Greyscale(Greyscale::new(level, None))
    }
}

/// The operations of one page, in drawing order.
#[derive(Debug, Default)]
pub(crate) struct Canvas {
    ops: Vec<Op>,
}

impl Canvas {
    /// `text` starting at `x_pt`, on the baseline `y_pt`.
    pub(crate) fn text(&mut self, x_pt: f32, y_pt: f32, style: Style, text: &PdfText) {
        let font = match style.weight {
            Weight::Regular => BuiltinFont::Helvetica,
            Weight::Bold => BuiltinFont::HelveticaBold,
        };
        // Each run is its own text object, so its cursor (`Td`) is absolute on the page.
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::Builtin(font),
                size: Pt(style.size_pt),
            },
            Op::SetFillColor {
                col: style.ink.color(),
            },
            Op::SetTextCursor {
                pos: Point {
                    x: Pt(x_pt),
                    y: Pt(y_pt),
                },
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.as_str().to_owned())],
            },
            Op::EndTextSection,
        ]);
    }

    /// `text` ending at `right_pt`, on the baseline `y_pt`.
    pub(crate) fn text_right(&mut self, right_pt: f32, y_pt: f32, style: Style, text: &PdfText) {
        self.text(right_pt - style.width_pt(text), y_pt, style, text);
    }

    /// A horizontal line from `x0_pt` to `x1_pt` at `y_pt`.
    pub(crate) fn rule(&mut self, x0_pt: f32, x1_pt: f32, y_pt: f32, thickness_pt: f32, ink: Ink) {
        let point = |x_pt| LinePoint {
            p: Point {
                x: Pt(x_pt),
                y: Pt(y_pt),
            },
            bezier: false,
        };
        self.ops.extend([
            Op::SetOutlineColor { col: ink.color() },
            Op::SetOutlineThickness {
                pt: Pt(thickness_pt),
            },
            Op::DrawLine {
                line: Line {
                    points: vec![point(x0_pt), point(x1_pt)],
                    is_closed: false,
                },
            },
        ]);
    }

    pub(crate) fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}
