//! `par order`: the PAR order of a grid as JSON or as a picture of the decode steps.

use std::fmt::Write as _;

use par_order::{ParSchedule, RegionGrid};

/// Output format.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// Machine-readable JSON.
    Json,
    /// Human-readable text.
    Text,
}

/// Arguments of `par order`.
#[derive(Debug, clap::Args)]
pub struct OrderArgs {
    /// Tokens per side of the code grid, L (16 for 256 px, 24 for 384 px with VQ-16).
    #[arg(long)]
    grid: usize,
    /// Parallel degree n = M² (1 = raster order, 4, 16, ...).
    #[arg(long)]
    parallel: usize,
    /// Latent frames T for video grids (spatial regions only, frame-major).
    #[arg(long, default_value_t = 1)]
    frames: usize,
    /// json: `{"order", "inverse", "steps", ...}`; text: the grid with every cell numbered by
    /// the (1-based) step that generates it (paper Fig. 1).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

#[derive(serde::Serialize)]
struct OrderReport<'a> {
    grid_size: usize,
    frames: usize,
    parallel: usize,
    /// Raster index of each PAR position.
    order: &'a [usize],
    /// PAR position of each raster index.
    inverse: &'a [usize],
    /// Transformer forwards to generate every token.
    steps: usize,
}

/// Runs `par order`.
pub fn run(args: &OrderArgs) -> anyhow::Result<()> {
    let grid = RegionGrid::video(args.frames, args.grid, args.parallel).map_err(|e| {
        anyhow::Error::from(e).context(format!(
            "--grid {} --parallel {} --frames {}",
            args.grid, args.parallel, args.frames
        ))
    })?;
    let schedule = ParSchedule::new(grid);
    let text = match args.format {
        Format::Json => {
            let report = OrderReport {
                grid_size: grid.grid_size(),
                frames: grid.frames(),
                parallel: grid.parallel(),
                order: schedule.order().par_to_raster(),
                inverse: schedule.order().raster_to_par(),
                steps: grid.num_steps(),
            };
            serde_json::to_string(&report)? + "\n"
        }
        Format::Text => step_picture(&schedule),
    };
    print!("{text}");
    Ok(())
}

/// Every cell of the grid labelled with the 1-based step that generates it.
fn step_picture(schedule: &ParSchedule) -> String {
    let grid = schedule.grid();
    let (l, m, b) = (grid.grid_size(), grid.regions_per_side(), grid.region_size());
    let width = grid.num_steps().to_string().len();
    let mut out = format!(
        "# {l}×{l} grid{}, {} regions ({m}×{m} of {b}×{b} tokens), {} steps: cell = step that generates it\n",
        if grid.frames() > 1 { format!(" × {} frames", grid.frames()) } else { String::new() },
        grid.parallel(),
        grid.num_steps(),
    );
    let inverse = schedule.order().raster_to_par();
    for frame in 0..grid.frames() {
        if grid.frames() > 1 {
            let _ = writeln!(out, "frame {frame}:");
        }
        for row in 0..l {
            let cells: Vec<String> = (0..l)
                .map(|col| {
                    let raster = (frame * l + row) * l + col;
                    let step = schedule.step_of_token(inverse[raster]) + 1;
                    format!("{step:>width$}")
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join(" "));
        }
    }
    out
}
