//! The flag fuzzer shared by `par`'s and the experiment binaries' tests (included with
//! `#[path]`): every value-taking flag of every command, read from the command's own clap help,
//! is run with extreme values on tiny fixtures, under an address-space limit and a time bound.
//!
//! A run passes when the command ends with status 0, 1 or 2 (130 after the fuzzer's Ctrl-C),
//! never by a panic (101), an abort (134) or another signal; a failure prints exactly one
//! `error:` line and no panic message, and a refusal (exit 2) of a value names the flag (or
//! its field, or quotes the value); and it ends within the time bound, or within the grace
//! period after the fuzzer's Ctrl-C (SIGINT) once the bound has passed (a long job that a user
//! asked for is not a crash, but it must stop when asked). The output flags (`--out`) also get
//! every input of the base command line and the input folder itself, each spelled four ways (as
//! given, with a trailing slash, through a folder that does not exist and `..`, and through a
//! symbolic link): those runs must be refused (exit 2) and leave the input byte for byte as it
//! was.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The extreme values every value-taking flag is given.
pub const VALUES: [&str; 7] = ["0", "-1", "18446744073709551615", "1e308", "NaN", "inf", ""];

/// Values between the documented maxima and what the machine holds, for targets whose jobs are
/// quick enough to run them (`Target::mid_values`): where a size estimate that is too low lets
/// a job through to an allocation failure.
pub const MID_VALUES: [&str; 2] = ["65536", "1000000"];

/// One command to fuzz: the executable, its subcommand words and a base command line that runs
/// on the fixtures (`{fx}`: the fixtures folder, `{out}`: a fresh folder of the case).
pub struct Target {
    /// A name for messages (`par sample`, `demo`).
    pub name: String,
    /// The executable.
    pub exe: PathBuf,
    /// Subcommand words (`["tokenizer", "train"]`), before the flags.
    pub sub: Vec<String>,
    /// The base flags and values.
    pub base: Vec<String>,
    /// Flags not fuzzed (with the reason in the caller's table; e.g. none).
    pub skip: Vec<String>,
    /// Whether the flags also get [`MID_VALUES`].
    pub mid_values: bool,
    /// For a resumable job: the flags that continue it (`--resume`, or none for jobs that resume
    /// by running the same command). Run again on the finished base job, it must exit 0 and
    /// change nothing in its output, not a byte or a modification time.
    pub rerun: Option<Vec<String>>,
}

/// `dir` and everything below it with its size, content hash and modification time (folders:
/// 0, 0 and theirs).
pub fn listing(dir: &Path) -> BTreeMap<PathBuf, (u64, u64, std::time::SystemTime)> {
    fn folders(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            out.push(p.to_path_buf());
            for e in std::fs::read_dir(p).unwrap().flatten() {
                folders(&e.path(), out);
            }
        }
    }
    let mut dirs = Vec::new();
    folders(dir, &mut dirs);
    let time = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).expect("listed");
    snapshot(dir)
        .into_iter()
        .map(|(p, (n, h))| {
            let t = time(&p);
            (p, (n, h, t))
        })
        .chain(dirs.into_iter().map(|d| {
            let t = time(&d);
            (d, (0, 0, t))
        }))
        .collect()
}

/// A value-taking long flag as the command's help lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Without the dashes.
    pub name: String,
    /// Whether it takes a value (`--out <OUT>`), not a switch.
    pub takes_value: bool,
}

/// The long flags of `exe sub… --help`, read from clap's help text: lines of the form
/// `  -x, --name <VALUE>` or `      --name`.
pub fn flags(exe: &Path, sub: &[String]) -> Vec<Flag> {
    let o = Command::new(exe).args(sub).arg("--help").output().expect("the command starts");
    assert!(
        o.status.success(),
        "{} {sub:?} --help: {}",
        exe.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    let mut out = Vec::new();
    for line in text.lines() {
        let t = line.trim_start();
        let t = match t.strip_prefix('-') {
            Some(rest) if !rest.starts_with('-') => match rest.split_once(", ") {
                Some((_, long)) => long,
                None => continue,
            },
            _ => t,
        };
        let Some(rest) = t.strip_prefix("--") else { continue };
        let name: String =
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        if name.is_empty() || line.len() - t.len() > 10 {
            continue; // prose, not a flag line
        }
        let after = &rest[name.len()..];
        out.push(Flag { name, takes_value: after.trim_start().starts_with('<') });
    }
    out.retain(|f| f.name != "help" && f.name != "version");
    out
}

/// The subcommands of `exe sub…` from its help's `Commands:` section (without `help`).
pub fn subcommands(exe: &Path, sub: &[String]) -> Vec<String> {
    let o = Command::new(exe).args(sub).arg("--help").output().expect("the command starts");
    let text = String::from_utf8_lossy(&o.stdout);
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("Commands:") {
            inside = true;
            continue;
        }
        if inside {
            if !line.starts_with("  ") {
                break;
            }
            let word = line.split_whitespace().next().unwrap_or_default().to_string();
            if word != "help" {
                out.push(word);
            }
        }
    }
    out
}

/// One run of the fuzzer.
#[derive(Debug, Clone)]
pub struct Case {
    /// The target's name.
    pub target: String,
    /// The command line after the executable.
    pub args: Vec<String>,
    /// The executable.
    pub exe: PathBuf,
    /// The flag and value under test (for messages).
    pub what: String,
    /// The flag (without dashes) and the value it was given, for a value case.
    pub flag: Option<(String, String)>,
    /// An input this case gives as the output: it must be refused (exit 2) and leave this path
    /// unchanged.
    pub aliased_input: Option<PathBuf>,
    /// The case's own folder (`{out}`).
    pub out: PathBuf,
}

/// `args` with `--flag value` set (replaced if the base has it; appended otherwise).
fn with_flag(base: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut args = base.to_vec();
    let long = format!("--{flag}");
    match args.iter().position(|a| *a == long) {
        Some(i) if i + 1 < args.len() && !args[i + 1].starts_with("--") => {
            args[i + 1] = value.to_string()
        }
        Some(i) => args.insert(i + 1, value.to_string()),
        None => args.extend([long, value.to_string()]),
    }
    args
}

fn expand(arg: &str, fx: &Path, out: &Path) -> String {
    arg.replace("{fx}", &fx.to_string_lossy()).replace("{out}", &out.to_string_lossy())
}

/// The cases of `targets`: every value-taking flag with every [`VALUES`] entry, and every output
/// flag with every existing input path of the base line and the fixtures folder.
pub fn cases(targets: &[Target], fx: &Path, scratch: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let counter = AtomicUsize::new(0);
    let next_out = || scratch.join(format!("case{:05}", counter.fetch_add(1, Ordering::SeqCst)));
    // The base line of `t` with `--flag value`, in a folder of its own.
    let case = |t: &Target,
                flag: &str,
                value: &str,
                what: String,
                value_case: Option<(String, String)>,
                aliased_input: Option<PathBuf>| {
        let out = next_out();
        let mut args = t.sub.clone();
        args.extend(with_flag(&t.base, flag, value).iter().map(|a| expand(a, fx, &out)));
        Case {
            target: t.name.clone(),
            args,
            exe: t.exe.clone(),
            what,
            flag: value_case,
            aliased_input,
            out,
        }
    };
    for t in targets {
        let found = flags(&t.exe, &t.sub);
        assert!(!found.is_empty(), "{}: no flags read from its help", t.name);
        for skip in &t.skip {
            assert!(
                found.iter().any(|f| &f.name == skip),
                "{}: skipped flag --{skip} does not exist",
                t.name
            );
        }
        for flag in found.iter().filter(|f| f.takes_value && !t.skip.contains(&f.name)) {
            let mid: &[&str] = if t.mid_values { &MID_VALUES } else { &[] };
            for &value in VALUES.iter().chain(mid) {
                cases.push(case(
                    t,
                    &flag.name,
                    value,
                    format!("--{} {value:?}", flag.name),
                    Some((flag.name.clone(), value.to_string())),
                    None,
                ));
            }
            if flag.name == "out" {
                // The inputs of the base line, and the fixtures folder that holds them.
                let mut inputs: Vec<PathBuf> = t
                    .base
                    .iter()
                    .filter(|a| a.contains("{fx}"))
                    .flat_map(|a| {
                        a.split(',')
                            .map(|p| PathBuf::from(expand(p, fx, Path::new(""))))
                            .collect::<Vec<_>>()
                    })
                    .filter(|p| p.exists())
                    .collect();
                if !inputs.is_empty() {
                    inputs.push(fx.to_path_buf());
                }
                for input in inputs {
                    // The input spelled four ways: as given, with a trailing slash, through a
                    // folder that does not exist and `..`, and through a symbolic link made in
                    // the case's folder.
                    let name = input.file_name().unwrap_or_default().to_string_lossy().into_owned();
                    let parent = input.parent().unwrap_or(Path::new("/")).to_path_buf();
                    let link = scratch.join(format!("link{:05}", counter.load(Ordering::SeqCst)));
                    std::fs::create_dir_all(scratch).unwrap();
                    let _ = std::os::unix::fs::symlink(&input, &link);
                    let spellings = [
                        input.to_string_lossy().into_owned(),
                        format!("{}/", input.display()),
                        format!("{}/no-such-folder/../{name}", parent.display()),
                        link.to_string_lossy().into_owned(),
                    ];
                    for spelled in spellings {
                        cases.push(case(
                            t,
                            "out",
                            &spelled,
                            format!("--out = the input {spelled}"),
                            None,
                            Some(input.clone()),
                        ));
                    }
                }
            }
        }
    }
    cases
}

/// A content listing of a file or folder (every file's path, size and bytes hash), to show an
/// input unchanged.
pub fn snapshot(path: &Path) -> BTreeMap<PathBuf, (u64, u64)> {
    fn walk(p: &Path, out: &mut BTreeMap<PathBuf, (u64, u64)>) {
        if p.is_dir() {
            for e in std::fs::read_dir(p).unwrap().flatten() {
                walk(&e.path(), out);
            }
        } else if let Ok(bytes) = std::fs::read(p) {
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            for b in &bytes {
                h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
            }
            out.insert(p.to_path_buf(), (bytes.len() as u64, h));
        }
    }
    let mut out = BTreeMap::new();
    walk(path, &mut out);
    out
}

/// What one run did.
#[derive(Debug)]
pub struct Outcome {
    /// The exit status, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Whether the fuzzer had to send Ctrl-C.
    pub interrupted: bool,
    /// Stderr.
    pub stderr: String,
    /// Wall time.
    pub seconds: f64,
}

/// Runs `case` under `ulimit -v memory_kib`; Ctrl-C after `bound`, SIGKILL after `bound + grace`.
pub fn run(case: &Case, memory_kib: u64, bound: Duration, grace: Duration) -> Outcome {
    std::fs::create_dir_all(&case.out).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {memory_kib}; exec \"$0\" \"$@\""))
        .arg(&case.exe)
        .args(&case.args)
        .current_dir(&case.out)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh starts");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut s);
        s
    });
    let t0 = Instant::now();
    let mut interrupted = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let elapsed = t0.elapsed();
        if !interrupted && elapsed > bound {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            interrupted = true;
        }
        if elapsed > bound + grace {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    Outcome {
        code: status.code(),
        signal: status.signal(),
        interrupted,
        stderr: reader.join().unwrap(),
        seconds: t0.elapsed().as_secs_f64(),
    }
}

/// Why `outcome` of `case` breaks the rules (module docs), if it does.
pub fn verdict(
    case: &Case,
    o: &Outcome,
    before: Option<&BTreeMap<PathBuf, (u64, u64)>>,
) -> Option<String> {
    let last = o.stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    let fail = |why: String| {
        Some(format!(
            "{} {} → {why} after {:.1} s; last stderr line: {last}",
            case.target, case.what, o.seconds
        ))
    };
    if let Some(at) = o.stderr.find("panicked") {
        let message: String = o.stderr[at..].lines().take(2).collect::<Vec<_>>().join(" ");
        return fail(format!("a panic ({message})"));
    }
    let ok_code = match (o.code, o.signal) {
        (Some(c @ 0..=2), _) => Some(c),
        (Some(130), _) if o.interrupted => Some(130),
        (None, Some(2)) if o.interrupted => Some(130), // SIGINT's default action: asked for
        (Some(c), _) => return fail(format!("exit status {c}")),
        (None, Some(s)) if o.interrupted => {
            return fail(format!("still running after Ctrl-C, then signal {s}"));
        }
        (None, s) => return fail(format!("killed by signal {s:?}")),
    };
    if let Some(c) = ok_code.filter(|&c| c != 0 && c != 130) {
        let errors: Vec<&str> = o.stderr.lines().filter(|l| l.starts_with("error")).collect();
        if errors.len() != 1 {
            return fail(format!("exit {c} with {} `error` lines (one expected)", errors.len()));
        }
        // A refused value names its flag, its config field, or quotes the value (a distinctive
        // one: "0" and "" are everywhere), in the error line or, for clap's usage errors, the
        // lines under it.
        if let (2, Some((flag, value))) = (c, &case.flag) {
            let line = o.stderr.as_str();
            let named = line.contains(&format!("--{flag}"))
                || line.contains(&flag.replace('-', "_"))
                || (value.len() > 1 && line.contains(value.as_str()));
            if !named {
                return fail(format!("exit 2 without naming --{flag}"));
            }
        }
    }
    if let Some(input) = &case.aliased_input {
        if ok_code != Some(2) {
            return fail(format!("exit {ok_code:?} with an input as the output (2 expected)"));
        }
        if let Some(before) = before
            && snapshot(input) != *before
        {
            return fail(format!("the input {} changed", input.display()));
        }
    }
    None
}

/// Runs each target's base command line once: it must succeed, or the fuzzing around it would
/// only exercise the refusal of a broken base.
pub fn check_bases(targets: &[Target], fx: &Path, scratch: &Path, memory_kib: u64) {
    for (i, t) in targets.iter().enumerate() {
        let out = scratch.join(format!("base{i}"));
        let mut args = t.sub.clone();
        args.extend(t.base.iter().map(|a| expand(a, fx, &out)));
        let case = Case {
            target: t.name.clone(),
            args,
            exe: t.exe.clone(),
            what: "base".into(),
            flag: None,
            aliased_input: None,
            out: out.clone(),
        };
        let o = run(&case, memory_kib, Duration::from_secs(600), Duration::from_secs(30));
        assert!(
            o.code == Some(0),
            "{}: the base command line fails ({:?}): {}",
            t.name,
            o.code,
            o.stderr
        );
        eprintln!("{}: base command line {:.1} s", t.name, o.seconds);
        if let Some(extra) = &t.rerun {
            // A second run's time stamps must be able to differ from the first's.
            std::thread::sleep(Duration::from_millis(20));
            let before = listing(&out);
            assert!(
                !before.is_empty(),
                "{}: the base job wrote nothing in {}",
                t.name,
                out.display()
            );
            let mut again = case.clone();
            again.args.extend(extra.iter().cloned());
            let o = run(&again, memory_kib, Duration::from_secs(600), Duration::from_secs(30));
            assert!(
                o.code == Some(0),
                "{}: the finished job run again fails ({:?}): {}",
                t.name,
                o.code,
                o.stderr
            );
            let after = listing(&out);
            let changed: Vec<&PathBuf> = before
                .keys()
                .chain(after.keys())
                .filter(|p| before.get(*p) != after.get(*p))
                .collect();
            assert!(
                changed.is_empty(),
                "{}: the finished job run again changed {changed:?}",
                t.name
            );
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// Runs every case on `threads` threads; returns the broken rules, one line each, and prints a
/// line of timing per target.
pub fn fuzz(
    cases: &[Case],
    threads: usize,
    memory_kib: u64,
    bound: Duration,
    grace: Duration,
) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let times: Mutex<BTreeMap<String, (usize, f64, f64)>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let before = case.aliased_input.as_deref().map(snapshot);
                    let o = run(case, memory_kib, bound, grace);
                    if let Some(why) = verdict(case, &o, before.as_ref()) {
                        failures.lock().unwrap().push(why);
                    }
                    let _ = std::fs::remove_dir_all(&case.out);
                    let mut t = times.lock().unwrap();
                    let e = t.entry(case.target.clone()).or_insert((0, 0.0, 0.0));
                    e.0 += 1;
                    e.1 += o.seconds;
                    e.2 = e.2.max(o.seconds);
                }
            });
        }
    });
    for (target, (n, total, max)) in times.into_inner().unwrap() {
        eprintln!("{target}: {n} runs, {total:.1} s in all, longest {max:.1} s");
    }
    failures.into_inner().unwrap()
}
