//! `par order` and `par devices` as a user runs them.

use std::process::{Command, Output};

fn par(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_par")).args(args).output().expect("par should start")
}

fn json(output: &Output) -> serde_json::Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("stdout should be JSON")
}

#[test]
fn order_json_has_order_inverse_and_steps() {
    let v = json(&par(&["order", "--grid", "4", "--parallel", "4"]));
    assert_eq!(
        v["order"],
        serde_json::json!([0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15])
    );
    assert_eq!(
        v["inverse"],
        serde_json::json!([0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15])
    );
    assert_eq!(v["steps"], 7);
}

#[test]
fn order_steps_for_paper_grids() {
    for (grid, parallel, frames, steps) in [
        ("24", "4", "1", 147),
        ("24", "16", "1", 51),
        ("16", "16", "5", 95),
        ("32", "1", "1", 1024),
    ] {
        let v = json(&par(&["order", "--grid", grid, "--parallel", parallel, "--frames", frames]));
        assert_eq!(v["steps"], steps, "{grid} {parallel} {frames}");
    }
}

#[test]
fn order_text_numbers_cells_by_step() {
    let out = par(&["order", "--grid", "4", "--parallel", "4", "--format", "text"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let grid: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(grid, ["1 5 2 5", "6 7 6 7", "3 5 4 5", "6 7 6 7"]);
}

#[test]
fn order_text_video_prints_every_frame() {
    let out =
        par(&["order", "--grid", "2", "--parallel", "4", "--frames", "2", "--format", "text"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("frame 0:\n1 2\n3 4\nframe 1:\n5 5\n5 5\n"), "{text}");
}

#[test]
fn invalid_order_exits_2_with_one_line() {
    for args in [
        ["--grid", "16", "--parallel", "2"],
        ["--grid", "10", "--parallel", "16"],
        ["--grid", "0", "--parallel", "4"],
        ["--grid", "2", "--parallel", "16"],
        ["--grid", "16", "--parallel", "0"],
        ["--grid", "100000", "--parallel", "1"],
    ] {
        let mut full = vec!["order"];
        full.extend(args);
        let out = par(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = par(&["order", "--grid", "4", "--parallel", "4", "--frames", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn devices_runs_on_the_default_backend() {
    let v = json(&par(&["devices"]));
    assert_eq!(v["check_passed"], true);
    assert_eq!(v["backend"], "flex");
}

#[test]
fn devices_runs_on_ndarray() {
    let v = json(&par(&["devices", "--backend", "ndarray"]));
    assert_eq!(v["check_passed"], true);
}

#[test]
fn uncompiled_backend_is_a_one_line_error() {
    let out = par(&["devices", "--backend", "cuda"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("backend `cuda` is not compiled into this binary (compiled: flex, ndarray"),
        "{stderr}"
    );
}
