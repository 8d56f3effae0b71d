//! npargs: the arguments, environment and auxiliary vector of a process or
//! core, after illumos pargs(1). Flags and rendering only; the data comes
//! from libproc-rs.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use libproc_rs::ProcessTarget;
use libproc_rs::escape::shell_line;
use nptools_cli::report;
use nptools_cli::{self as cli, CommonArgs, Diagnostics, ReportError, SearchArgs};
use serde_json::{Value, json};

/// Print the arguments, environment or auxiliary vector of processes and
/// core files.
#[derive(Debug, Parser)]
#[command(
    name = "npargs",
    version,
    about = "Print the arguments, environment or auxiliary vector of processes and core files",
    long_about = "Print the argument vector (argv) of each process or core file, as illumos \
pargs does; with -e its environment and with -x its auxiliary vector.\n\n\
An operand that is a decimal number is a live process; anything else is the path of an \
x86_64 ELF core file (from the kernel or from gdb's gcore). For a core, argv and the \
environment are recovered from the process stack the kernel built at exec time; when the \
core lacks that stack, argv falls back to the 80-byte pr_psargs and a warning says so. A \
process that wrote a title over its arguments (setproctitle, or process.title in node) shows \
that title, with a warning.\n\n\
Bytes the process controls that are not printable (control characters, escape sequences, \
invalid UTF-8) are shown as \\xNN and a backslash as \\\\, unless --raw is given.",
    after_help = "Exit status: 0 when every operand was reported, 1 when any failed, 2 on usage errors."
)]
pub struct Args {
    /// Print the argument vector (the default).
    #[arg(short = 'a')]
    pub argv: bool,

    /// Print the environment: the current one, read through the C library's
    /// `environ` (as npenv does).
    #[arg(short = 'e')]
    pub env: bool,

    /// Print the auxiliary vector, one `AT_NAME 0xVALUE decoded` line per entry.
    #[arg(short = 'x')]
    pub auxv: bool,

    /// Print the command line as one line a POSIX.1-2024 shell (bash, zsh, ksh)
    /// runs as the same argv; unprintable bytes are written as $'\ooo' (octal).
    #[arg(short = 'l', conflicts_with_all = ["env", "auxv", "json", "raw"])]
    pub line: bool,

    #[command(flatten)]
    pub search: SearchArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The clap definition (for man pages and completions).
pub fn command() -> clap::Command {
    Args::command()
}

/// Run npargs with the process's arguments.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let options = args.common.run_options(!args.line);
    let open_options = args.search.open_options();
    cli::run_opening(
        "npargs",
        &args.common.operands,
        options,
        |op| libproc_rs::open(op, &open_options),
        |target, _operand, out, diag| {
            if args.common.json {
                write_json(&args, target, out, diag)
            } else if args.line {
                write_line(target, out, diag)
            } else {
                write_text(&args, target, out, diag)
            }
        },
    )
}

fn show_argv(args: &Args) -> bool {
    args.argv || !(args.env || args.auxv)
}

fn argv_checked(
    target: &dyn ProcessTarget,
    diag: &mut Diagnostics,
) -> Result<Vec<OsString>, ReportError> {
    let argv = target.argv()?;
    diag.warn_caveat(&argv);
    Ok(argv.items)
}

fn write_text(
    args: &Args,
    target: &dyn ProcessTarget,
    out: &mut dyn Write,
    diag: &mut Diagnostics,
) -> Result<(), ReportError> {
    let mut sections = 0;
    if show_argv(args) {
        let argv = argv_checked(target, diag)?;
        report::write_indexed(out, "argv", &argv, args.common.raw)?;
        sections += 1;
    }
    if args.env {
        if sections > 0 {
            writeln!(out)?;
        }
        let env = libproc_rs::environ::environment(target, false)?;
        diag.warn_caveat(&env.vars);
        report::write_indexed(out, "envp", &env.vars.items, args.common.raw)?;
        sections += 1;
    }
    if args.auxv {
        if sections > 0 {
            writeln!(out)?;
        }
        for a in decoded_auxv(target)? {
            let line = format!("{:<20} 0x{:016x} {}", a.name, a.entry.value, a.text);
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

fn decoded_auxv(target: &dyn ProcessTarget) -> Result<Vec<report::DecodedAux>, ReportError> {
    let entries = target.auxv()?;
    let maps = target.mappings().unwrap_or_default();
    let names = report::id_names_for(target);
    Ok(report::decode_auxv(target, &entries, &maps, &names))
}

fn write_line(
    target: &dyn ProcessTarget,
    out: &mut dyn Write,
    diag: &mut Diagnostics,
) -> Result<(), ReportError> {
    let argv = argv_checked(target, diag)?;
    if argv.is_empty() {
        return Err(ReportError::Target(libproc_rs::Error::EmptyArgv));
    }
    writeln!(out, "{}", shell_line(&argv))?;
    Ok(())
}

fn write_json(
    args: &Args,
    target: &dyn ProcessTarget,
    out: &mut dyn Write,
    diag: &mut Diagnostics,
) -> Result<(), ReportError> {
    let mut doc = report::target_json(target);
    if show_argv(args) {
        let argv = target.argv()?;
        diag.warn_caveat(&argv);
        if let Some(c) = &argv.caveat {
            doc.insert("argv_caveat".into(), json!(c));
        }
        doc.insert("argv".into(), report::strings_json(&argv.items));
    }
    if args.env {
        let env = libproc_rs::environ::environment(target, false)?;
        diag.warn_caveat(&env.vars);
        doc.extend(report::environment_json(&env));
    }
    if args.auxv {
        let entries: Vec<Value> = decoded_auxv(target)?
            .into_iter()
            .map(|a| {
                json!({
                    "type": a.entry.key,
                    "name": a.name,
                    "value": a.entry.value,
                    "decoded": a.json,
                })
            })
            .collect();
        doc.insert("auxv".into(), Value::Array(entries));
    }
    report::write_json_line(out, doc)?;
    Ok(())
}

/// The EXAMPLES section of the man page.
pub const MAN_EXAMPLES: &str = r#"Arguments of a running node server:
    $ npargs 4242
    4242:	node --max-old-space-size=4096 /app/server.js
    argv[0]: node
    argv[1]: --max-old-space-size=4096
    argv[2]: /app/server.js

The same from a core file, with its auxiliary vector:
    $ npargs -a -x /var/cores/core.4242
    core '/var/cores/core.4242' of 4242:	node --max-old-space-size=4096 /app/server.js
    argv[0]: node
    ...

    AT_PAGESZ            0x0000000000001000 4096
    AT_UID               0x00000000000003e8 1000(app)
    AT_EXECFN            0x00007ffd3c1fefe5 /usr/bin/node

A line to run the same command again (arguments with spaces or
control characters are quoted):
    $ npargs -l 4242
    node --max-old-space-size=4096 /app/server.js

For scripts, one JSON object per operand:
    $ npargs --json 4242 | jq -r '.argv[1]'
"#;

#[cfg(test)]
mod golden;
