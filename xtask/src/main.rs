//! `cargo run -p xtask -- man`: regenerate man pages and completions.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("man") => {
            let root = xtask::workspace();
            for (rel, bytes) in xtask::generated() {
                let path = root.join(&rel);
                if let Some(dir) = path.parent()
                    && let Err(e) = std::fs::create_dir_all(dir)
                {
                    eprintln!("xtask: {}: {e}", dir.display());
                    return ExitCode::FAILURE;
                }
                if let Err(e) = std::fs::write(&path, bytes) {
                    eprintln!("xtask: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", rel.display());
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: cargo run -p xtask -- man");
            ExitCode::from(2)
        }
    }
}
