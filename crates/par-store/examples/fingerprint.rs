//! Prints the fingerprint a resumable job records of each file given (docs/checkpoints.md), with
//! the time it took: `cargo run --release -p par-store --example fingerprint -- FILE…`.

fn main() -> std::process::ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: fingerprint FILE…");
        return std::process::ExitCode::from(2);
    }
    for file in files {
        let t0 = std::time::Instant::now();
        match par_store::FileFingerprint::of(std::path::Path::new(&file)) {
            Ok(f) => {
                let s = t0.elapsed().as_secs_f64();
                println!(
                    "{file}: {} bytes, xxh3 {} in {s:.3} s ({:.2} GB/s)",
                    f.bytes,
                    f.xxh3,
                    f.bytes as f64 / s / 1e9
                );
            }
            Err(e) => {
                eprintln!("error: {file}: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    std::process::ExitCode::SUCCESS
}
