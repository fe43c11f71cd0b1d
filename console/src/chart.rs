//! The chart of spend per day by model: stacked bars drawn as SVG by `plotters` on the server (its SVG
//! backend writes text as `<text>`, so no font is needed here; the browser draws it). Heights are
//! floating-point for drawing only: the figures shown as numbers come from the exact sums in the table.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use plotters::prelude::*;
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

/// Spend per day (x) stacked by model, with a legend; an SVG document.
pub fn spend_per_day(
    days: &[NaiveDate],
    models: &[String],
    cells: &BTreeMap<(NaiveDate, String), (u64, Decimal)>,
) -> String {
    let mut svg = String::new();
    if let Err(error) = draw(&mut svg, days, models, cells) {
        tracing::warn!(%error, "usage chart not drawn");
        svg.clear();
        svg.push_str(r#"<svg xmlns="http://www.w3.org/2000/svg" width="960" height="360"></svg>"#);
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
    let root = SVGBackend::with_string(svg, (960, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let count = i32::try_from(days.len()).unwrap_or(i32::MAX).max(1);
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .caption("Spend per day (USD)", ("sans-serif", 18))
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
        chart
            .draw_series(bars)?
            .label(model.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    if !models.is_empty() {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
