//! npstack --sample: the run's flags and its outputs (the top stacks on
//! stdout, folded stacks, a flame graph, a speedscope file, JSON). The
//! sampling itself is libproc-rs's `stack::sample`.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use libproc_rs::ProcessTarget;
use libproc_rs::diag::{Notice, Sink};
use libproc_rs::escape::{escape_bytes, escape_os};
use libproc_rs::stack::sample::{
    self, Ended, Profile, SampleKind, SampleOptions, SampledThread, median_and_max,
};
use nptools_cli::report;
use nptools_cli::{Diagnostics, ReportError};
use serde_json::{Value, json};

/// How many distinct stacks the terminal report shows.
const TOP_STACKS: usize = 20;

/// The sampling flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SampleArgs {
    /// Sample the threads' stacks for DURATION (`10s`, `500ms`, `2m`) and
    /// report the stacks that took the most samples (a live process only).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub sample: Option<Duration>,

    /// Samples a second with --sample.
    #[arg(long, value_name = "HZ", default_value_t = 99, requires = "sample",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub rate: u32,

    /// With --sample, count threads that are blocked too (under their
    /// blocking frame), not only those on a CPU.
    #[arg(long, requires = "sample")]
    pub idle: bool,

    /// With --sample, write folded stacks (`thread;outer;...;inner COUNT`,
    /// one line per distinct stack) to FILE, as flamegraph.pl reads them.
    #[arg(long, value_name = "FILE", requires = "sample")]
    pub folded: Option<PathBuf>,

    /// With --sample, write an SVG flame graph to FILE: JavaScript frames
    /// green, V8's own (builtins, runtime, its frames) aqua, native code
    /// red to yellow.
    #[arg(long, value_name = "FILE.svg", requires = "sample")]
    pub flamegraph: Option<PathBuf>,

    /// With --sample, write the samples in speedscope's file format (one
    /// sampled profile per kind of thread) to FILE.
    #[arg(long, value_name = "FILE", requires = "sample")]
    pub speedscope: Option<PathBuf>,
}

/// `10s`, `500ms`, `2m`, `1.5s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (10s, 500ms, 2m)"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "us" => value / 1e6,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("'{text}': unknown unit '{unit}' (s, ms, m)")),
    };
    if !(secs > 0.0 && secs < 1e7) {
        return Err(format!("'{text}': a duration must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Sample one live target and write every output asked for.
pub fn run(
    target: &dyn ProcessTarget,
    options: &SampleOptions,
    args: &SampleArgs,
    json: bool,
    out: &mut dyn Write,
    diag: &mut Diagnostics,
) -> Result<(), ReportError> {
    let stop = sample::stop_on_signals();
    let terminal = std::io::stderr().is_terminal();
    let mut progress = |p: sample::Progress| {
        if terminal {
            eprint!(
                "\r\x1b[Knpstack: sampling {}: {:.1} s, {} samples, {} thread{}",
                target.pid(),
                p.elapsed.as_secs_f64(),
                p.samples,
                p.threads,
                if p.threads == 1 { "" } else { "s" }
            );
        }
    };
    let mut notices: Vec<Notice> = Vec::new();
    let profile = sample::sample(target, options, stop, &mut progress, &mut notices);
    if terminal {
        eprint!("\r\x1b[K");
    }
    let profile = profile?;
    for n in &notices {
        diag.notice(n.clone());
    }
    match profile.ended {
        // Said by the sampler's failure notice.
        Ended::Duration | Ended::Failed => {}
        Ended::Interrupted => diag.warn(format!(
            "interrupted after {:.1} s: the outputs hold the samples taken so far",
            profile.elapsed.as_secs_f64()
        )),
        Ended::TargetExited => diag.warn(format!(
            "the process exited after {:.1} s: the outputs hold the samples taken until then",
            profile.elapsed.as_secs_f64()
        )),
    }
    let files = [
        (&args.folded, write_folded as Writer),
        (&args.flamegraph, write_flamegraph as Writer),
        (&args.speedscope, write_speedscope as Writer),
    ];
    for (path, writer) in files {
        if let Some(path) = path {
            write_file(path, &profile, target, writer, diag);
        }
    }
    if json {
        write_json(out, target, &profile, &notices)?;
    } else {
        write_top(out, &profile)?;
    }
    Ok(())
}

type Writer = fn(&mut dyn Write, &Profile, &dyn ProcessTarget) -> std::io::Result<()>;

/// Write one output file whole; a failure is the operand's.
fn write_file(
    path: &Path,
    profile: &Profile,
    target: &dyn ProcessTarget,
    writer: Writer,
    diag: &mut Diagnostics,
) {
    let written = File::create(path).and_then(|f| {
        let mut w = BufWriter::new(f);
        writer(&mut w, profile, target)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    });
    if let Err(e) = written {
        diag.fail(format!("cannot write {}: {e}", escape_os(path.as_os_str())));
    }
}

/// A thread as the first frame of a folded stack, and as a report shows
/// it: `name role`, escaped.
fn thread_label(t: &SampledThread) -> String {
    let mut label = t
        .name
        .as_deref()
        .map_or_else(|| "thread".to_owned(), |n| escape_os(n).into_owned());
    if let Some(role) = t.role {
        label.push(' ');
        label.push_str(role);
    }
    label
}

/// A name as one frame of a folded line: escaped, with no `;` (the
/// separator) and no newline.
fn folded_name(name: &str) -> String {
    escape_bytes(name.as_bytes()).replace(';', ":")
}

/// A thread as the first frame of a folded line: its label, escaped once
/// already, with no `;`.
fn folded_thread(t: &SampledThread) -> String {
    thread_label(t).replace(';', ":")
}

fn folded_lines(profile: &Profile) -> Vec<String> {
    profile
        .stacks
        .iter()
        .map(|s| {
            let mut line = folded_thread(&profile.threads[s.thread]);
            for f in &s.frames {
                line.push(';');
                line.push_str(&folded_name(&f.name));
            }
            line.push_str(&format!(" {}", s.count));
            line
        })
        .collect()
}

fn write_folded(
    out: &mut dyn Write,
    profile: &Profile,
    _: &dyn ProcessTarget,
) -> std::io::Result<()> {
    for line in folded_lines(profile) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A colour for a frame by what it is: JavaScript green, V8 aqua, native
/// red to yellow, threads and unknown code grey; the shade from the name,
/// so neighbours differ and a name keeps its colour from run to run.
fn colour(kind: Option<SampleKind>, name: &str) -> inferno::flamegraph::color::Color {
    let h = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let v = |span: u32| (h % span) as u8;
    let (r, g, b) = match kind {
        Some(SampleKind::Js) => (50 + v(60), 170 + v(60), 50 + v(40)),
        Some(SampleKind::V8) => (60 + v(40), 170 + v(50), 200 + v(55)),
        Some(SampleKind::Native) => (205 + v(50), 80 + v(150), 40 + v(30)),
        Some(SampleKind::Unknown) | None => (160 + v(40), 160 + v(40), 160 + v(40)),
    };
    inferno::flamegraph::color::Color { r, g, b }
}

fn write_flamegraph(
    out: &mut dyn Write,
    profile: &Profile,
    target: &dyn ProcessTarget,
) -> std::io::Result<()> {
    let mut palette = inferno::flamegraph::color::PaletteMap::default();
    for s in &profile.stacks {
        let thread = folded_thread(&profile.threads[s.thread]);
        palette.insert(&thread, colour(None, &thread));
        for f in &s.frames {
            let name = folded_name(&f.name);
            let c = colour(Some(f.kind), &name);
            palette.insert(name, c);
        }
    }
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!(
        "npstack --sample: {} ({} samples in {:.1} s at {} Hz)",
        report::header(target, OsStr::new("")),
        profile.samples,
        profile.elapsed.as_secs_f64(),
        profile.rate
    );
    options.subtitle =
        Some("green: JavaScript · aqua: V8 (builtins, runtime) · red/yellow: native".to_owned());
    options.count_name = "samples".to_owned();
    options.palette_map = Some(&mut palette);
    let lines = folded_lines(profile);
    if lines.is_empty() {
        // inferno refuses an empty profile: an SVG that says so.
        return writeln!(
            out,
            r#"<?xml version="1.0" standalone="no"?><svg xmlns="http://www.w3.org/2000/svg" width="600" height="40"><text x="10" y="25">npstack --sample: no samples (no thread was on a CPU)</text></svg>"#
        );
    }
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
        .map_err(std::io::Error::other)
}

/// speedscope's file format
/// (<https://www.speedscope.app/file-format-schema.json>): the frames
/// shared, and one sampled profile per kind of thread, its samples in
/// time order, outermost frame first, each weighing one sampling period.
fn write_speedscope(
    out: &mut dyn Write,
    profile: &Profile,
    target: &dyn ProcessTarget,
) -> std::io::Result<()> {
    let mut frames: Vec<Value> = Vec::new();
    let mut index = std::collections::HashMap::new();
    let stack_frames: Vec<Vec<usize>> = profile
        .stacks
        .iter()
        .map(|s| {
            s.frames
                .iter()
                .map(|f| {
                    let key = (f.name.clone(), f.kind);
                    *index.entry(key).or_insert_with(|| {
                        let mut v = json!({"name": f.name});
                        if let Some(s) = &f.script {
                            v["file"] = json!(s);
                        }
                        if let Some(l) = f.line {
                            v["line"] = json!(l);
                        }
                        frames.push(v);
                        frames.len() - 1
                    })
                })
                .collect()
        })
        .collect();
    let period = 1.0 / f64::from(profile.rate);
    let profiles: Vec<Value> = (0..profile.threads.len())
        .map(|ti| {
            let samples: Vec<&(usize, Duration)> = profile
                .timeline
                .iter()
                .filter(|(si, _)| profile.stacks[*si].thread == ti)
                .collect();
            let end = samples
                .last()
                .map_or(0.0, |(_, at)| at.as_secs_f64() + period);
            json!({
                "type": "sampled",
                "name": thread_label(&profile.threads[ti]),
                "unit": "seconds",
                "startValue": 0.0,
                "endValue": end,
                "samples": samples.iter().map(|(si, _)| &stack_frames[*si]).collect::<Vec<_>>(),
                "weights": vec![period; samples.len()],
            })
        })
        .collect();
    let doc = json!({
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": profiles,
        "name": report::header(target, OsStr::new("")),
        "activeProfileIndex": 0,
        "exporter": concat!("npstack ", env!("CARGO_PKG_VERSION")),
    });
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)
}

fn percent(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

/// Held per sample: ` held per thread sample: median 80 us, max 300 us`.
fn held_text(held: &[u64]) -> Option<String> {
    let (median, max) = median_and_max(held)?;
    Some(format!("median {median} us, max {max} us"))
}

/// The terminal report: what was sampled, then the stacks that took the
/// most samples, most first, innermost frame first as npstack prints
/// stacks.
fn write_top(out: &mut dyn Write, profile: &Profile) -> std::io::Result<()> {
    writeln!(
        out,
        "{} samples of {} thread{} in {:.1} s at {} Hz ({} ticks){}",
        profile.samples,
        profile.tids_seen,
        if profile.tids_seen == 1 { "" } else { "s" },
        profile.elapsed.as_secs_f64(),
        profile.rate,
        profile.ticks,
        match profile.ended {
            Ended::Duration => "",
            Ended::Interrupted => ", interrupted",
            Ended::TargetExited => ", until the process exited",
            Ended::Failed => ", until a sample failed",
        }
    )?;
    if let Some(h) = held_text(&profile.held_us) {
        writeln!(out, "held per thread sample: {h}")?;
    }
    for s in profile.stacks.iter().take(TOP_STACKS) {
        writeln!(
            out,
            "-----------------  {} sample{} ({:.1}%): {}  --------------------",
            s.count,
            if s.count == 1 { "" } else { "s" },
            percent(s.count, profile.samples),
            thread_label(&profile.threads[s.thread])
        )?;
        for f in s.frames.iter().rev() {
            let tag = match f.kind {
                SampleKind::Js => " [js]",
                SampleKind::V8 => " [v8]",
                SampleKind::Native | SampleKind::Unknown => "",
            };
            writeln!(out, " {}{tag}", escape_bytes(f.name.as_bytes()))?;
        }
    }
    let rest = profile.stacks.len().saturating_sub(TOP_STACKS);
    if rest > 0 {
        let samples: u64 = profile.stacks[TOP_STACKS..].iter().map(|s| s.count).sum();
        writeln!(
            out,
            "... {rest} more distinct stack{} ({samples} samples, {:.1}%)",
            if rest == 1 { "" } else { "s" },
            percent(samples, profile.samples)
        )?;
    }
    Ok(())
}

fn write_json(
    out: &mut dyn Write,
    target: &dyn ProcessTarget,
    profile: &Profile,
    notices: &[Notice],
) -> Result<(), ReportError> {
    let mut doc = super::target_json_with(target, notices);
    let held = |v: &[u64]| {
        median_and_max(v)
            .map(|(median, max)| json!({"median": median, "max": max, "count": v.len()}))
    };
    doc.insert(
        "sample".into(),
        json!({
            "rate": profile.rate,
            "elapsed_s": profile.elapsed.as_secs_f64(),
            "ticks": profile.ticks,
            "samples": profile.samples,
            "threads_seen": profile.tids_seen,
            "ended": match profile.ended {
                Ended::Duration => "duration",
                Ended::Interrupted => "interrupted",
                Ended::TargetExited => "target exited",
                Ended::Failed => "failed",
            },
            "held_us": held(&profile.held_us),
            "main_thread_held_us": held(&profile.main_held_us),
        }),
    );
    let stacks: Vec<Value> = profile
        .stacks
        .iter()
        .map(|s| {
            let t = &profile.threads[s.thread];
            json!({
                "thread": {
                    "name": t.name.as_deref().map_or(Value::Null, nptools_cli::json::json_os),
                    "role": t.role,
                },
                "count": s.count,
                "frames": s.frames.iter().map(|f| json!({
                    "name": f.name,
                    "kind": f.kind.as_str(),
                    "script": f.script,
                    "line": f.line,
                    "inlined": f.inlined,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    doc.insert("stacks".into(), Value::Array(stacks));
    report::write_json_line(out, doc)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }
}
