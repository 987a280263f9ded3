//! Pictures people look at: loss curves and heat maps as PNG (plotters, with the embedded DejaVu
//! Sans Mono font).

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

static FONT: &[u8] = include_bytes!("../../../data/fonts/DejaVuSansMono.ttf");

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
    write_png(path, buf, w, h)
}

fn write_png(path: &Path, rgb: Vec<u8>, w: u32, h: u32) -> anyhow::Result<()> {
    let image =
        par_data::PixelImage { width: w as usize, height: h as usize, channels: 3, data: rgb };
    let png = image.to_png().context("encoding PNG")?;
    par_store::write_atomic(path, &png).with_context(|| format!("writing {}", path.display()))
}

/// The viridis colour map at `t ∈ [0, 1]` (5 anchors, linearly interpolated).
fn viridis(t: f64) -> RGBColor {
    const ANCHORS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = t.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A heat map of `values` (`rows × cols`, row-major; NaN cells drawn grey) with a colour bar
/// labelled `unit`, written atomically as PNG. `marker` outlines one cell (e.g. the reference
/// token of an entropy map).
///
/// # Errors
///
/// Drawing or writing errors.
pub fn heatmap_png(
    path: &Path,
    title: &str,
    values: &[f64],
    rows: usize,
    cols: usize,
    unit: &str,
    marker: Option<usize>,
) -> anyhow::Result<()> {
    anyhow::ensure!(values.len() == rows * cols && rows > 0 && cols > 0, "heat map shape");
    register_font();
    let cell = (480 / rows.max(cols)).max(4) as u32;
    let (map_w, map_h) = (cell * cols as u32, cell * rows as u32);
    let (w, h) = (map_w + 190, map_h + 80);
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = finite.iter().fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let (lo, hi) = if finite.is_empty() { (0.0, 1.0) } else { (lo, hi.max(lo + 1e-12)) };
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let plot = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("plot: {e}");
        root.draw(&Text::new(title.to_string(), (20, 12), ("sans-serif", 18))).map_err(plot)?;
        let (x0, y0) = (20i32, 50i32);
        for r in 0..rows {
            for c in 0..cols {
                let v = values[r * cols + c];
                let color = if v.is_finite() {
                    viridis((v - lo) / (hi - lo))
                } else {
                    RGBColor(160, 160, 160)
                };
                let (x, y) = (x0 + (c as u32 * cell) as i32, y0 + (r as u32 * cell) as i32);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell as i32, y + cell as i32)],
                    color.filled(),
                ))
                .map_err(plot)?;
            }
        }
        if let Some(m) = marker.filter(|&m| m < rows * cols) {
            let (x, y) =
                (x0 + (m % cols) as i32 * cell as i32, y0 + (m / cols) as i32 * cell as i32);
            root.draw(&Rectangle::new(
                [(x, y), (x + cell as i32, y + cell as i32)],
                RED.stroke_width(2),
            ))
            .map_err(plot)?;
        }
        // Colour bar: 20 px wide, the map's height, with 5 ticks.
        let bx = x0 + map_w as i32 + 30;
        for py in 0..map_h as i32 {
            let t = 1.0 - py as f64 / (map_h as f64 - 1.0).max(1.0);
            root.draw(&Rectangle::new(
                [(bx, y0 + py), (bx + 20, y0 + py + 1)],
                viridis(t).filled(),
            ))
            .map_err(plot)?;
        }
        for k in 0..5 {
            let t = k as f64 / 4.0;
            let y = y0 + ((1.0 - t) * (map_h as f64 - 1.0)) as i32;
            root.draw(&Text::new(
                format!("{:.3}", lo + t * (hi - lo)),
                (bx + 26, y - 6),
                ("sans-serif", 13),
            ))
            .map_err(plot)?;
        }
        root.draw(&Text::new(unit.to_string(), (bx, y0 + map_h as i32 + 10), ("sans-serif", 13)))
            .map_err(plot)?;
        root.present().map_err(plot)?;
    }
    write_png(path, buf, w, h)
}

/// Tiles in labelled rows: one row per `(label, images)` entry, the label written left of it,
/// every tile enlarged `scale`× with nearest-neighbour sampling (so a 32 px sample can be judged
/// at a glance), written atomically as PNG.
///
/// # Errors
///
/// No rows or tiles of different sizes; drawing or writing errors.
pub fn labelled_grid_png(
    path: &Path,
    title: &str,
    rows: &[(String, Vec<par_data::PixelImage>)],
    scale: usize,
) -> anyhow::Result<()> {
    let first = rows
        .iter()
        .flat_map(|(_, r)| r.first())
        .next()
        .ok_or_else(|| anyhow::anyhow!("a labelled grid needs at least one image"))?;
    let (tw, th) = (first.width * scale.max(1), first.height * scale.max(1));
    anyhow::ensure!(
        rows.iter()
            .flat_map(|(_, r)| r)
            .all(|i| (i.width, i.height) == (first.width, first.height)),
        "grid images of one size"
    );
    register_font();
    let gap = 4usize;
    // DejaVu Sans Mono at 14 px: 8.4 px per character (the longest label fits).
    let longest = rows.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
    let label_w = 150usize.max(16 + longest * 9);
    let columns = rows.iter().map(|(_, r)| r.len()).max().unwrap_or(1).max(1);
    let (w, h) = (
        (label_w + columns * (tw + gap) + gap) as u32,
        (40 + rows.len() * (th + gap) + gap) as u32,
    );
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let plot = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("plot: {e}");
        root.draw(&Text::new(title.to_string(), (8, 10), ("sans-serif", 16))).map_err(plot)?;
        for (r, (label, images)) in rows.iter().enumerate() {
            let y0 = 40 + r * (th + gap);
            root.draw(&Text::new(label.clone(), (8, (y0 + th / 2) as i32 - 7), ("sans-serif", 14)))
                .map_err(plot)?;
            for (c, im) in images.iter().enumerate() {
                let x0 = label_w + gap + c * (tw + gap);
                for y in 0..th {
                    for x in 0..tw {
                        let src = ((y / scale.max(1)) * im.width + x / scale.max(1)) * im.channels;
                        let px = if im.channels == 1 {
                            [im.data[src]; 3]
                        } else {
                            [im.data[src], im.data[src + 1], im.data[src + 2]]
                        };
                        root.draw_pixel(
                            ((x0 + x) as i32, (y0 + y) as i32),
                            &RGBColor(px[0], px[1], px[2]),
                        )
                        .map_err(plot)?;
                    }
                }
            }
        }
        root.present().map_err(plot)?;
    }
    write_png(path, buf, w, h)
}
