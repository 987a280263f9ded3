//! Loss curves as PNG (plotters, with the embedded DejaVu Sans Mono font).

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

/// One named curve: `(x, y)` points.
pub struct Curve<'a> {
    /// Legend label.
    pub label: &'a str,
    /// Points.
    pub points: Vec<(f64, f64)>,
}

static FONT: &[u8] = include_bytes!("../../data/fonts/DejaVuSansMono.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Only fails for an unparsable font, and this one is embedded.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draws `curves` (x: steps, y: loss) into a `width × height` PNG at `path`, written atomically.
///
/// # Errors
///
/// Drawing or writing errors.
pub fn loss_png(
    path: &Path,
    title: &str,
    x_label: &str,
    curves: &[Curve<'_>],
) -> anyhow::Result<()> {
    register_font();
    let (w, h) = (900u32, 520u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let pts = curves.iter().flat_map(|c| c.points.iter()).filter(|p| p.1.is_finite());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        if x0 > x1 {
            (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
        }
        let pad = ((y1 - y0) * 0.05).max(1e-6);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 22))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("cross-entropy (nats)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        let colors = [BLUE, RED, GREEN, MAGENTA, BLACK];
        for (i, c) in curves.iter().enumerate() {
            let color = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(
                    c.points.iter().copied().filter(|p| p.1.is_finite()),
                    color.stroke_width(2),
                ))
                .map_err(|e| anyhow::anyhow!("plot: {e}"))?
                .label(c.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(|e| anyhow::anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("plot: {e}"))?;
    }
    let image =
        par_data::PixelImage { width: w as usize, height: h as usize, channels: 3, data: buf };
    crate::write_atomic(path, &image.to_png().context("encoding PNG")?)
}
