//! npstack: scaffold; the tool is built by its own issue.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use libproc_rs::cli::{self, CommonArgs, RunOptions};
use libproc_rs::report;

/// Print the thread stacks of a process or core.
#[derive(Debug, Parser)]
#[command(
    name = "npstack",
    version,
    about = "Print the thread stacks of a process or core"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The clap definition (for man pages and completions).
pub fn command() -> clap::Command {
    Args::command()
}

/// Run npstack with the process's arguments.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let options = RunOptions {
        blank_line_between: !args.common.json,
    };
    cli::run(
        "npstack",
        &args.common.operands,
        options,
        |target, operand, out, _diag| {
            report::write_header(out, target, operand, args.common.raw)?;
            Ok(())
        },
    )
}

/// The EXAMPLES section of the man page.
pub const MAN_EXAMPLES: &str = "    $ npstack 4242\n";
