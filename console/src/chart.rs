//! The chart of spend per day by model: stacked bars drawn as SVG by `plotters` on the server (its SVG
//! backend writes text as `<text>`, so no font is needed here; the browser draws it). Heights are
//! floating-point for drawing only: the figures shown as numbers come from the exact sums in the table.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Colours of the models' bars (distinguishable, dark enough on white).
const PALETTE: [RGBColor; 8] = [
    RGBColor(11, 92, 173),
    RGBColor(201, 80, 0),
    RGBColor(30, 120, 60),
    RGBColor(150, 40, 140),
    RGBColor(120, 90, 20),
    RGBColor(0, 120, 130),
    RGBColor(170, 30, 50),
    RGBColor(80, 80, 80),
];

/// The chart's width in SVG pixels: the page shows it at this size (scrolling inside its own region on a
/// narrow screen), so its text keeps its size in CSS pixels.
pub const WIDTH: u32 = 960;
/// The plot's height; the legend is drawn under it, outside the plot.
const PLOT_HEIGHT: u32 = 340;
/// Legend entries per row, each this wide and this high.
const LEGEND_COLUMNS: usize = 3;
const LEGEND_ENTRY: (i32, i32) = (300, 26);
/// The size of the chart's text as plotters takes it: its SVG backend writes font sizes at about 0.8 of
/// this, so 18 is drawn at about 14.5 px (at least 12 px, the page showing the chart at 1:1).
const TEXT: u32 = 18;

/// The chart's height for so many models: the plot and a legend row per [`LEGEND_COLUMNS`] models.
pub fn height(models: usize) -> u32 {
    let rows = u32::try_from(models.div_ceil(LEGEND_COLUMNS)).unwrap_or(1);
    PLOT_HEIGHT + 16 + rows * u32::try_from(LEGEND_ENTRY.1).unwrap_or(26)
}

/// Spend per day (x) stacked by model, with a legend under the plot; an SVG document.
pub fn spend_per_day(
    days: &[NaiveDate],
    models: &[String],
    cells: &BTreeMap<(NaiveDate, String), (u64, Decimal)>,
) -> String {
    let mut svg = String::new();
    if let Err(error) = draw(&mut svg, days, models, cells) {
        tracing::warn!(%error, "usage chart not drawn");
        svg.clear();
        svg.push_str(&format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{}"></svg>"#,
            height(models.len())
        ));
    }
    svg
}

fn draw(
    svg: &mut String,
    days: &[NaiveDate],
    models: &[String],
    cells: &BTreeMap<(NaiveDate, String), (u64, Decimal)>,
) -> Result<(), Box<dyn std::error::Error>> {
    let usd = |amount: &Decimal| amount.to_f64().unwrap_or(0.0);
    let day_totals: Vec<f64> = days
        .iter()
        .map(|day| {
            models
                .iter()
                .filter_map(|model| cells.get(&(*day, model.clone())))
                .map(|(_, cost)| usd(cost))
                .sum()
        })
        .collect();
    let top = day_totals
        .iter()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(0.000_001)
        * 1.1;
    let root = SVGBackend::with_string(svg, (WIDTH, height(models.len()))).into_drawing_area();
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_vertically(PLOT_HEIGHT);
    let count = i32::try_from(days.len()).unwrap_or(i32::MAX).max(1);
    let mut chart = ChartBuilder::on(&plot)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(96)
        .caption("Spend per day (USD)", ("sans-serif", 22))
        .build_cartesian_2d(0..count, 0.0..top)?;
    let labels = days.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(RGBColor(238, 238, 238))
        .y_labels(6)
        .x_labels(usize::try_from(count.min(10)).unwrap_or(10))
        .x_label_formatter(&|index| {
            usize::try_from(*index)
                .ok()
                .and_then(|index| labels.get(index))
                .map(|day| day.format("%b %d").to_string())
                .unwrap_or_default()
        })
        .y_label_formatter(&|value| format!("{value:.4}"))
        .y_desc("USD")
        .label_style(("sans-serif", TEXT))
        .axis_desc_style(("sans-serif", TEXT))
        .draw()?;
    let mut base = vec![0.0_f64; days.len()];
    for (index, model) in models.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let mut bars = Vec::new();
        for (x, day) in days.iter().enumerate() {
            let Some((_, cost)) = cells.get(&(*day, model.clone())) else {
                continue;
            };
            let (bottom, height) = (base[x], usd(cost));
            base[x] += height;
            let x = i32::try_from(x).unwrap_or(i32::MAX);
            bars.push(Rectangle::new(
                [(x, bottom), (x + 1, bottom + height)],
                colour.filled(),
            ));
        }
        chart.draw_series(bars)?;
        // The legend, under the plot (never over the bars): a swatch and the model's name.
        let (column, row) = (index % LEGEND_COLUMNS, index / LEGEND_COLUMNS);
        let x = 24 + i32::try_from(column).unwrap_or(0) * LEGEND_ENTRY.0;
        let y = 8 + i32::try_from(row).unwrap_or(0) * LEGEND_ENTRY.1 + LEGEND_ENTRY.1 / 2;
        legend.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            colour.filled(),
        ))?;
        legend.draw(&Text::new(
            model.clone(),
            (x + 20, y),
            ("sans-serif", TEXT)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    root.present()?;
    Ok(())
}
