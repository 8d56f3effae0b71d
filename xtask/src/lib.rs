//! Generated files: man pages (`man/*.1`) and shell completions
//! (`completions/`), all from the clap definitions of the tools, so that
//! what `--help` says and what the pages say cannot drift apart. A test
//! fails when a committed file is stale; `make man` regenerates them.

use std::path::PathBuf;

use clap_complete::Shell;

/// The tools and their clap definitions, plus the sections a man page has
/// beyond what clap knows.
#[derive(Debug)]
pub struct ToolPage {
    pub name: &'static str,
    pub command: fn() -> clap::Command,
    pub examples: &'static str,
    /// Sections of the tool's own (title, text), after EXIT STATUS; an
    /// OPERANDS one replaces the common text.
    pub sections: &'static [(&'static str, &'static str)],
}

/// Every tool in the suite.
pub fn tools() -> Vec<ToolPage> {
    vec![
        ToolPage {
            name: "npargs",
            command: npargs::command,
            examples: npargs::MAN_EXAMPLES,
            sections: &[],
        },
        ToolPage {
            name: "npenv",
            command: npenv::command,
            examples: npenv::MAN_EXAMPLES,
            sections: &[],
        },
        ToolPage {
            name: "npfiles",
            command: npfiles::command,
            examples: npfiles::MAN_EXAMPLES,
            sections: &[],
        },
        ToolPage {
            name: "npmap",
            command: npmap::command,
            examples: npmap::MAN_EXAMPLES,
            sections: &[],
        },
        ToolPage {
            name: "npstack",
            command: npstack::command,
            examples: npstack::MAN_EXAMPLES,
            sections: &[],
        },
        ToolPage {
            name: "npgcore",
            command: npgcore::command,
            examples: npgcore::MAN_EXAMPLES,
            sections: npgcore::MAN_SECTIONS,
        },
    ]
}

const EXIT_STATUS: &str = "0 when every operand was reported; 1 when any operand failed \
(no such process, permission denied, not a core file, a truncated core...), after \
reporting the others; 2 on usage errors. Errors are printed on standard error as \
`TOOL: OPERAND: cause`. A closed standard output (as in `| head`) ends the run quietly.";

const OPERANDS: &str = "An operand made of decimal digits is the id of a live process. Anything \
else is the path of an x86_64 ELF core file, written by the kernel or by gdb's gcore; \
files the core names (the executable, shared libraries) are read from this machine. \
A core may be compressed with zstd, lz4 or xz (systemd-coredump's `.zst`, `.lz4`, `.xz` \
files; told by content, not by name) or come on a pipe or FIFO (`<(zstd -dc core.zst)`, \
`/dev/stdin`); `-` reads it from standard input. Such a core is first decompressed, as it \
streams in, into an unlinked sparse file in TMPDIR (default /tmp), which needs room for \
the uncompressed core; memory use stays small.";

fn escape_roff(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let line = line.replace('\\', "\\e");
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn section(out: &mut Vec<u8>, title: &str, body: &str, literal: bool) {
    out.extend_from_slice(format!(".SH \"{title}\"\n").as_bytes());
    if literal {
        out.extend_from_slice(b".nf\n");
        out.extend_from_slice(escape_roff(body).as_bytes());
        out.extend_from_slice(b".fi\n");
    } else {
        out.extend_from_slice(b".PP\n");
        out.extend_from_slice(escape_roff(body).as_bytes());
    }
}

/// Render one man page.
pub fn man_page(tool: &ToolPage) -> Vec<u8> {
    let man = clap_mangen::Man::new((tool.command)())
        .manual("nptools")
        .source(format!("nptools {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    let render = |out: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(out)?;
        man.render_name_section(out)?;
        man.render_synopsis_section(out)?;
        man.render_description_section(out)?;
        man.render_options_section(out)?;
        Ok(())
    };
    render(&mut out).expect("rendering to memory cannot fail");
    let own = |title: &str| tool.sections.iter().find(|(t, _)| *t == title).map(|s| s.1);
    section(
        &mut out,
        "OPERANDS",
        own("OPERANDS").unwrap_or(OPERANDS),
        false,
    );
    section(&mut out, "EXIT STATUS", EXIT_STATUS, false);
    for (title, body) in tool.sections.iter().filter(|(t, _)| *t != "OPERANDS") {
        section(&mut out, title, body, false);
    }
    section(&mut out, "EXAMPLES", tool.examples, true);
    let others: Vec<String> = tools()
        .iter()
        .filter(|t| t.name != tool.name)
        .map(|t| format!("{}(1)", t.name))
        .chain(["pargs(1)", "penv(1)", "proc(5)", "core(5)"].map(String::from))
        .collect();
    section(&mut out, "SEE ALSO", &others.join(", "), false);
    out
}

/// Every generated file: path relative to the workspace, and contents.
pub fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for tool in tools() {
        files.push((
            PathBuf::from(format!("man/{}.1", tool.name)),
            man_page(&tool),
        ));
        for (shell, file) in [
            (Shell::Bash, format!("completions/{}.bash", tool.name)),
            (Shell::Zsh, format!("completions/_{}", tool.name)),
            (Shell::Fish, format!("completions/{}.fish", tool.name)),
        ] {
            let mut cmd = (tool.command)();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, tool.name, &mut buf);
            files.push((PathBuf::from(file), buf));
        }
    }
    files
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_owned()
}
