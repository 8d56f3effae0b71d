//! npenv: the environment of a process or core, after illumos penv(1).
//! Flags and rendering only; the data comes from libproc-rs.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use libproc_rs::ProcessTarget;
use nptools_cli::report;
use nptools_cli::{self as cli, CommonArgs, Diagnostics, ReportError, SearchArgs};

/// Print the environment of processes and core files.
#[derive(Debug, Parser)]
#[command(
    name = "npenv",
    version,
    about = "Print the environment of processes and core files",
    long_about = "Print the environment of each process or core file, one envp[N]: NAME=value \
line per variable, as illumos penv does.\n\n\
By default npenv shows the current environment: it finds the C library's `environ` \
variable in the target's memory (in the executable when it holds a copy, as node does, \
else in libc) and follows it, so variables set at run time with setenv, putenv or Node.js's \
process.env show. This works on core files too. Where `environ` cannot be resolved (a \
static or stripped binary, an unusual C library), npenv shows the initial environment and \
says so on stderr.\n\n\
An operand that is a decimal number is a live process; anything else is the path of an \
x86_64 ELF core file. Unprintable bytes are shown as \\xNN and a backslash as \\\\, unless \
--raw is given.",
    after_help = "Exit status: 0 when every operand was reported, 1 when any failed, 2 on usage errors."
)]
pub struct Args {
    /// Show the environment the process started with (/proc/PID/environ, or
    /// the initial stack in a core) instead of the current one.
    #[arg(long)]
    pub initial: bool,

    #[command(flatten)]
    pub search: SearchArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// The clap definition (for man pages and completions).
pub fn command() -> clap::Command {
    Args::command()
}

/// Run npenv with the process's arguments.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let options = args.common.run_options(true);
    let open_options = args.search.open_options();
    cli::run_opening(
        "npenv",
        &args.common.operands,
        options,
        |op| libproc_rs::open(op, &open_options),
        |target, _operand, out, diag| write_report(&args, target, out, diag),
    )
}

/// One operand's report: `envp[N]: ...` lines, or the JSON document.
fn write_report(
    args: &Args,
    target: &dyn ProcessTarget,
    out: &mut dyn Write,
    diag: &mut Diagnostics,
) -> Result<(), ReportError> {
    let env = libproc_rs::environ::environment(target, args.initial)?;
    diag.warn_caveat(&env.vars);
    if args.common.json {
        let mut doc = report::target_json(target);
        doc.extend(report::environment_json(&env));
        report::write_json_line(out, doc)?;
    } else {
        report::write_indexed(out, "envp", &env.vars.items, args.common.raw)?;
    }
    Ok(())
}

/// The EXAMPLES section of the man page.
pub const MAN_EXAMPLES: &str = r#"The environment of a running process, including variables it set
itself (process.env.X = ... in node):
    $ npenv 4242
    4242:	node /app/server.js
    envp[0]: PATH=/usr/local/bin:/usr/bin:/bin
    envp[1]: NODE_ENV=production
    envp[2]: FEATURE_FLAG=on

What it started with:
    $ npenv --initial 4242

The same from a core file:
    $ npenv /var/cores/core.4242

Is a variable set, from a script:
    $ npenv --json 4242 | jq -r '.envp[]' | grep '^NODE_ENV='
"#;

#[cfg(test)]
mod golden;
