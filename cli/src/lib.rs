//! The operand loop every tool runs: open each operand, let the tool write
//! its report, print errors as `npX: OPERAND: cause`, and turn the outcome
//! into an exit status (0 all well, 1 any operand failed; clap uses 2 for
//! usage errors). A closed stdout (`| head`) ends the run quietly.

#[cfg(any(test, feature = "golden"))]
pub mod golden;
pub mod json;
pub mod report;

use std::ffi::{OsStr, OsString};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use libproc_rs::diag::{Notice, Severity, Sink};
use libproc_rs::error::Error;
use libproc_rs::escape::escape_os;
use libproc_rs::target::{ProcessTarget, StringList};

/// The flags and operands every tool takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Write the target's bytes unescaped (for programs that want the bytes).
    #[arg(long)]
    pub raw: bool,

    /// One JSON object per operand, one per line. Strings that are not valid
    /// UTF-8 are arrays of byte values.
    #[arg(long)]
    pub json: bool,

    /// Process ids or core files.
    ///
    /// A core may be zstd-, lz4- or xz-compressed (told by its content) or
    /// on a pipe; `-` reads one from standard input.
    #[arg(value_name = "pid|core", required = true)]
    pub operands: Vec<OsString>,
}

impl CommonArgs {
    /// The loop's options for a tool whose text report (`separate`) has the
    /// header line and a blank line between operands; JSON has neither.
    pub fn run_options(&self, separate: bool) -> RunOptions {
        RunOptions {
            blank_line_between: separate && !self.json,
            header: separate && !self.json,
            raw: self.raw,
        }
    }
}

/// What a tool's report function may fail with.
#[derive(Debug)]
pub enum ReportError {
    /// Reading the target failed; the message is printed for the operand.
    Target(Error),
    /// Writing the report failed (a closed pipe ends the run).
    Output(io::Error),
}

impl From<Error> for ReportError {
    fn from(e: Error) -> Self {
        ReportError::Target(e)
    }
}

impl From<io::Error> for ReportError {
    fn from(e: io::Error) -> Self {
        ReportError::Output(e)
    }
}

/// Diagnostics for the operand being reported.
#[derive(Debug)]
pub struct Diagnostics<'a> {
    tool: &'a str,
    operand: &'a OsStr,
    /// Set by a failure notice: the operand counts as failed even though a
    /// report was written.
    failed: bool,
    /// Warnings already printed: two layers that find the same thing (a
    /// core reader and a tool's own check of a wrong file) say it once.
    warned: Vec<String>,
}

impl<'a> Diagnostics<'a> {
    /// Diagnostics for one operand of `tool` (the operand loop makes
    /// these; so does a test of a report function).
    pub fn new(tool: &'a str, operand: &'a OsStr) -> Self {
        Diagnostics {
            tool,
            operand,
            failed: false,
            warned: Vec::new(),
        }
    }

    /// The warnings printed so far.
    pub fn warnings(&self) -> &[String] {
        &self.warned
    }

    /// Warn when a list is a best effort (see [`StringList::caveat`]).
    pub fn warn_caveat(&mut self, list: &StringList) {
        if let Some(c) = &list.caveat {
            self.warn(c.clone());
        }
    }
}

/// The library's notices reach the user here: a warning is printed as
/// `tool: OPERAND: warning: text` (once: two layers that find the same
/// thing say it once), a failure as `tool: OPERAND: text`, and it fails
/// the operand.
impl Sink for Diagnostics<'_> {
    fn notice(&mut self, notice: Notice) {
        let operand = escape_os(self.operand);
        match notice.severity {
            Severity::Warning => {
                if self.warned.contains(&notice.text) {
                    return;
                }
                eprintln!("{}: {operand}: warning: {}", self.tool, notice.text);
                self.warned.push(notice.text);
            }
            Severity::Failure => {
                eprintln!("{}: {operand}: {}", self.tool, notice.text);
                self.failed = true;
            }
        }
    }
}

/// Where the files a target names are looked for besides its own root and
/// this machine's: the flags of the tools that read a target's binaries.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SearchArgs {
    /// Look for the target's files (executable, libraries) under DIR too:
    /// for a core, before this machine's (a core from another machine,
    /// with that machine's files copied under DIR); for a process, after
    /// its own root. A file is used only if its build-id is the one the
    /// process had.
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,

    /// Look for debug files in DIR too (as DIR/.build-id/xx/rest.debug, or
    /// by the binary's .gnu_debuglink name), after /usr/lib/debug under
    /// the target's root, the sysroot and this machine. May be repeated.
    #[arg(long = "debug-dir", value_name = "DIR")]
    pub debug_dirs: Vec<PathBuf>,
}

impl SearchArgs {
    /// The library's options for opening operands.
    pub fn open_options(&self) -> libproc_rs::OpenOptions {
        libproc_rs::OpenOptions {
            sysroot: self.sysroot.clone(),
            debug_dirs: self.debug_dirs.clone(),
        }
    }
}

/// Options of the loop.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Print a blank line between the reports of several operands (text
    /// output; JSON output is one document per line and needs none).
    pub blank_line_between: bool,
    /// Print the header line (see [`crate::report::header`]) before the
    /// report: when the report then fails, the user still sees which
    /// process the error is about.
    pub header: bool,
    /// Write the header's bytes unescaped.
    pub raw: bool,
}

/// Open a target from an operand: a decimal number is a live PID, anything
/// else the path of a core file.
pub fn open_operand(operand: &OsStr) -> Result<Box<dyn ProcessTarget>, Error> {
    libproc_rs::open(operand, &libproc_rs::OpenOptions::default())
}

fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// A tool's report of one operand: the target, the operand as typed, stdout
/// and the operand's diagnostics.
pub trait Report:
    FnMut(&dyn ProcessTarget, &OsStr, &mut dyn Write, &mut Diagnostics) -> Result<(), ReportError>
{
}

impl<F> Report for F where
    F: FnMut(
        &dyn ProcessTarget,
        &OsStr,
        &mut dyn Write,
        &mut Diagnostics,
    ) -> Result<(), ReportError>
{
}

/// Run `report` for every operand.
pub fn run(
    tool: &str,
    operands: &[OsString],
    options: RunOptions,
    report: impl Report,
) -> ExitCode {
    run_opening(tool, operands, options, open_operand, report)
}

/// [`run`] with the tool's own way of opening an operand (npstack takes
/// `PID/LWPS` and a sysroot for cores).
pub fn run_opening<O, F>(
    tool: &str,
    operands: &[OsString],
    options: RunOptions,
    mut open: O,
    mut report: F,
) -> ExitCode
where
    O: FnMut(&OsStr) -> Result<Box<dyn ProcessTarget>, Error>,
    F: Report,
{
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut any_failed = false;
    let mut printed_before = false;
    for operand in operands {
        let mut diag = Diagnostics::new(tool, operand);
        let target = match open(operand) {
            Ok(t) => t,
            Err(e) => {
                diag.fail(e.to_string());
                any_failed = true;
                continue;
            }
        };
        if options.blank_line_between
            && printed_before
            && let Err(e) = writeln!(out)
        {
            return finish_on_output_error(tool, e, any_failed);
        }
        if options.header
            && let Err(e) = report::write_header(&mut out, target.as_ref(), operand, options.raw)
        {
            return finish_on_output_error(tool, e, any_failed);
        }
        let result = report(target.as_ref(), operand, &mut out, &mut diag);
        // Keep stdout and stderr in order on a shared terminal.
        let flushed = out.flush();
        target.drain_notices(&mut diag);
        match result {
            Ok(()) => {}
            Err(ReportError::Target(e)) => diag.fail(e.to_string()),
            Err(ReportError::Output(e)) => return finish_on_output_error(tool, e, any_failed),
        }
        if let Err(e) = flushed {
            return finish_on_output_error(tool, e, any_failed);
        }
        printed_before = true;
        any_failed |= diag.failed;
    }
    if let Err(e) = out.flush() {
        return finish_on_output_error(tool, e, any_failed);
    }
    exit_code(any_failed)
}

fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn finish_on_output_error(tool: &str, e: io::Error, failed: bool) -> ExitCode {
    if is_broken_pipe(&e) {
        return exit_code(failed);
    }
    eprintln!("{tool}: write error: {e}");
    ExitCode::from(1)
}
