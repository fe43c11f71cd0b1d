//! Where everything goes on the page: the header, the summary, the usage table (continued on as many
//! pages as it needs, its header repeated) and every page's footer. All lengths are points, y upwards from
//! the bottom of an A4 page.

use printpdf::Op;

use crate::canvas::{Canvas, Ink, Style};
use crate::figures::{Figures, ModelUsage};
use crate::text::PdfText;

/// A4, 210 × 297 mm.
pub(crate) const PAGE_WIDTH_MM: f32 = 210.0;
pub(crate) const PAGE_HEIGHT_MM: f32 = 297.0;

const PT_PER_MM: f32 = 72.0 / 25.4;
const MARGIN: f32 = 18.0 * PT_PER_MM;
const LEFT: f32 = MARGIN;
const RIGHT: f32 = PAGE_WIDTH_MM * PT_PER_MM - MARGIN;
const TOP: f32 = PAGE_HEIGHT_MM * PT_PER_MM - MARGIN;
const CONTENT_WIDTH: f32 = RIGHT - LEFT;
/// The footer's baseline; the body ends well above its rule.
const FOOTER_BASELINE: f32 = MARGIN;
const BODY_BOTTOM: f32 = MARGIN + 22.0;

/// The summary's width: a narrow block reads as a list of figures, not as a table across the page.
const SUMMARY_WIDTH: f32 = 300.0;

/// The usage table's font sizes, largest first: the first at which the figures leave the model column at
/// least `MIN_MODEL_WIDTH` is used.
const TABLE_SIZES_PT: [f32; 5] = [8.0, 7.5, 7.0, 6.5, 6.0];
const MIN_MODEL_WIDTH: f32 = 110.0;
/// The space left of each figure column.
const COLUMN_GAP: f32 = 10.0;
const TABLE_HEADERS: [&str; 7] = [
    "Requests",
    "Input tokens",
    "Output tokens",
    "Input cost",
    "Output cost",
    "Fees",
    "Charged",
];

/// The statement's pages, each as its drawing operations.
pub(crate) fn pages(figures: &Figures, operator: &str) -> Vec<Vec<Op>> {
    let mut pages = Pages::new(figures, PdfText::new(operator));
    pages.summary();
    pages.usage();
    pages.finish()
}

/// The pages drawn so far and the one being drawn, with the height still free on it.
struct Pages<'a> {
    figures: &'a Figures,
    operator: PdfText,
    done: Vec<Canvas>,
    page: Canvas,
    /// The top of the free space on `page`.
    y: f32,
}

impl<'a> Pages<'a> {
    /// The first page, with the statement's header drawn.
    fn new(figures: &'a Figures, operator: PdfText) -> Pages<'a> {
        let mut pages = Pages {
            figures,
            operator,
            done: Vec::new(),
            page: Canvas::default(),
            y: TOP,
        };
        pages.header();
        pages
    }

    /// The operator and the statement's title and number, then the account (left) and the month (right).
    fn header(&mut self) {
        let f = self.figures;
        let title = PdfText::new("Statement");
        let number = PdfText::new(&f.number);
        let (title_style, number_style) = (Style::bold(16.0), Style::regular(10.0));
        self.page.text_right(RIGHT, TOP - 16.0, title_style, &title);
        self.page
            .text_right(RIGHT, TOP - 30.0, number_style, &number);
        let title_width = title_style
            .width_pt(&title)
            .max(number_style.width_pt(&number));
        let operator_style = Style::bold(18.0);
        let operator = operator_style.fit(&self.operator, CONTENT_WIDTH - title_width - 24.0);
        self.page.text(LEFT, TOP - 18.0, operator_style, &operator);
        self.page.rule(LEFT, RIGHT, TOP - 40.0, 0.8, Ink::Black);

        let half = CONTENT_WIDTH / 2.0 - 12.0;
        let (name_style, small) = (Style::bold(11.0), Style::regular(8.5));
        let name = name_style.fit(&PdfText::new(&f.account_name), half);
        self.page.text(LEFT, TOP - 58.0, name_style, &name);
        let id = PdfText::new(&format!("Account {}", f.account_id));
        let id = Style::grey(8.5).fit(&id, half);
        self.page.text(LEFT, TOP - 72.0, Style::grey(8.5), &id);

        let month = PdfText::new(&f.month);
        self.page.text_right(RIGHT, TOP - 58.0, name_style, &month);
        for (line, y) in [(&f.period, 72.0), (&f.issued, 84.0)] {
            self.page
                .text_right(RIGHT, TOP - y, small, &small.fit(&PdfText::new(line), half));
        }
        let status = Style::grey(8.5);
        let status_text = status.fit(&PdfText::new(f.status), half);
        self.page
            .text_right(RIGHT, TOP - 96.0, status, &status_text);
        self.y = TOP - 118.0;
    }

    /// The operator and which statement this is, on every page after the first.
    fn continuation_header(&mut self) {
        let f = self.figures;
        let operator_style = Style::bold(11.0);
        let operator = operator_style.fit(&self.operator, CONTENT_WIDTH / 2.0);
        self.page.text(LEFT, TOP - 11.0, operator_style, &operator);
        let which = PdfText::new(&format!(
            "Statement {} \u{b7} {} (continued)",
            f.number, f.month
        ));
        let which_style = Style::regular(8.5);
        let which = which_style.fit(&which, CONTENT_WIDTH / 2.0 - 12.0);
        self.page.text_right(RIGHT, TOP - 11.0, which_style, &which);
        self.page.rule(LEFT, RIGHT, TOP - 18.0, 0.5, Ink::Black);
        self.y = TOP - 30.0;
    }

    fn section_title(&mut self, title: &str) {
        self.page
            .text(LEFT, self.y - 12.0, Style::bold(12.0), &PdfText::new(title));
        self.y -= 22.0;
    }

    /// Opening balance, the movements with their counts, the closing balance under a rule, and the volume
    /// discounts the usage includes.
    fn summary(&mut self) {
        let f = self.figures;
        self.section_title("Summary");
        let row = Style::regular(10.0);
        let summary_right = LEFT + SUMMARY_WIDTH;
        for (label, amount) in &f.summary {
            let amount = PdfText::new(amount);
            // The amount is never cut; a label that would run into it is.
            let label = row.fit(
                &PdfText::new(label),
                SUMMARY_WIDTH - row.width_pt(&amount) - 12.0,
            );
            self.page.text(LEFT, self.y - 11.0, row, &label);
            self.page
                .text_right(summary_right, self.y - 11.0, row, &amount);
            self.page
                .rule(LEFT, summary_right, self.y - 15.5, 0.3, Ink::Light);
            self.y -= 16.0;
        }
        self.y -= 2.0;
        self.page.rule(LEFT, summary_right, self.y, 0.8, Ink::Black);
        let closing = Style::bold(10.5);
        self.page.text(
            LEFT,
            self.y - 13.0,
            closing,
            &PdfText::new("Closing balance"),
        );
        self.page.text_right(
            summary_right,
            self.y - 13.0,
            closing,
            &PdfText::new(&f.closing_balance),
        );
        self.y -= 18.0;
        if let Some(discounts) = &f.volume_discounts {
            let line = format!("Volume discounts included in usage: {discounts}");
            self.page
                .text(LEFT, self.y - 10.0, Style::grey(8.5), &PdfText::new(&line));
            self.y -= 14.0;
        }
        self.y -= 18.0;
    }

    /// "Usage by model": one row a model, its token classes under it, continued on new pages.
    fn usage(&mut self) {
        let usage = &self.figures.usage;
        let Some(first) = usage.first() else {
            self.section_title("Usage by model");
            self.page.text(
                LEFT,
                self.y - 10.0,
                Style::regular(9.0),
                &PdfText::new("No usage this month."),
            );
            return;
        };
        let columns = Columns::fitting(usage);
        // The title stays with the table's header and first row.
        self.make_room(22.0 + columns.header_height() + columns.row_height(first));
        self.section_title("Usage by model");
        self.table_header(&columns);
        for model in usage {
            if self.make_room(columns.row_height(model)) {
                self.table_header(&columns);
            }
            self.table_row(&columns, model);
        }
    }

    fn table_header(&mut self, columns: &Columns) {
        let style = columns.header;
        let baseline = self.y - style.size_pt;
        self.page
            .text(LEFT, baseline, style, &PdfText::new("Model"));
        for (header, right) in TABLE_HEADERS.iter().zip(columns.rights) {
            self.page
                .text_right(right, baseline, style, &PdfText::new(header));
        }
        self.page.rule(LEFT, RIGHT, baseline - 4.0, 0.6, Ink::Black);
        self.y -= columns.header_height();
    }

    fn table_row(&mut self, columns: &Columns, model: &ModelUsage) {
        let style = columns.cell;
        let baseline = self.y - style.size_pt - 2.0;
        let name = style.fit(&PdfText::new(&model.model), columns.model_width);
        self.page.text(LEFT, baseline, style, &name);
        for (cell, right) in model.cells.iter().zip(columns.rights) {
            self.page
                .text_right(right, baseline, style, &PdfText::new(cell));
        }
        if !model.detail.is_empty() {
            let detail = columns.detail;
            let indent = 8.0;
            let text = detail.fit(&PdfText::new(&model.detail), CONTENT_WIDTH - indent);
            self.page.text(
                LEFT + indent,
                baseline - detail.size_pt - 2.5,
                detail,
                &text,
            );
        }
        self.y -= columns.row_height(model);
        self.page.rule(LEFT, RIGHT, self.y, 0.3, Ink::Light);
    }

    /// Starts a new page unless `height` fits above the footer; true when it did.
    fn make_room(&mut self, height: f32) -> bool {
        if self.y - height >= BODY_BOTTOM {
            return false;
        }
        let full = std::mem::take(&mut self.page);
        self.done.push(full);
        self.continuation_header();
        true
    }

    /// Every page with its footer: the account and "Page N of M".
    fn finish(mut self) -> Vec<Vec<Op>> {
        self.done.push(self.page);
        let total = self.done.len();
        let account = PdfText::new(&format!("Account {}", self.figures.account_id));
        let footer = Style::grey(7.5);
        self.done
            .into_iter()
            .enumerate()
            .map(|(i, mut page)| {
                page.rule(LEFT, RIGHT, FOOTER_BASELINE + 10.0, 0.3, Ink::Light);
                page.text(LEFT, FOOTER_BASELINE, footer, &account);
                let number = PdfText::new(&format!("Page {} of {total}", i + 1));
                page.text_right(RIGHT, FOOTER_BASELINE, footer, &number);
                page.into_ops()
            })
            .collect()
    }
}

/// The usage table's geometry: its font sizes, the model column's width and each figure column's right
/// edge, chosen so that the widest figure of every column fits.
struct Columns {
    header: Style,
    cell: Style,
    detail: Style,
    model_width: f32,
    rights: [f32; 7],
}

impl Columns {
    fn fitting(usage: &[ModelUsage]) -> Columns {
        let widths_at = |size_pt: f32| -> [f32; 7] {
            std::array::from_fn(|column| {
                let header = Style::bold(size_pt).width_pt(&PdfText::new(TABLE_HEADERS[column]));
                usage
                    .iter()
                    .map(|model| {
                        Style::regular(size_pt).width_pt(&PdfText::new(&model.cells[column]))
                    })
                    .fold(header, f32::max)
            })
        };
        let model_width_at = |widths: &[f32; 7]| {
            CONTENT_WIDTH - widths.iter().map(|width| width + COLUMN_GAP).sum::<f32>()
        };
        // Past the smallest size the model column narrows instead; only absurd amounts get there.
        let size_pt = TABLE_SIZES_PT
            .into_iter()
            .find(|&size_pt| model_width_at(&widths_at(size_pt)) >= MIN_MODEL_WIDTH)
            .unwrap_or(TABLE_SIZES_PT[TABLE_SIZES_PT.len() - 1]);
        let widths = widths_at(size_pt);
        let mut rights = [RIGHT; 7];
        for column in (0..6).rev() {
            rights[column] = rights[column + 1] - widths[column + 1] - COLUMN_GAP;
        }
        Columns {
            header: Style::bold(size_pt),
            cell: Style::regular(size_pt),
            detail: Style::grey(size_pt * 0.85),
            model_width: model_width_at(&widths).max(COLUMN_GAP),
            rights,
        }
    }

    fn header_height(&self) -> f32 {
        self.header.size_pt + 8.0
    }

    fn row_height(&self, model: &ModelUsage) -> f32 {
        let detail = if model.detail.is_empty() {
            0.0
        } else {
            self.detail.size_pt + 2.5
        };
        self.cell.size_pt + 2.0 + detail + 5.0
    }
}
