//! The committed man pages and completions match the clap definitions.

#[test]
fn committed_man_pages_and_completions_are_current() {
    let root = xtask::workspace();
    let mut stale = Vec::new();
    for (rel, want) in xtask::generated() {
        match std::fs::read(root.join(&rel)) {
            Ok(have) if have == want => {}
            Ok(_) => stale.push(format!("{} is stale", rel.display())),
            Err(e) => stale.push(format!("{} is missing ({e})", rel.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{}; run `make man` and commit the result",
        stale.join(", ")
    );
}

#[test]
fn man_pages_describe_every_flag() {
    for tool in xtask::tools() {
        let page = String::from_utf8(xtask::man_page(&tool)).unwrap();
        for arg in (tool.command)().get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(
                    page.contains(&format!("\\-\\-{}", long.replace('-', "\\-"))),
                    "{} lacks --{long}",
                    tool.name
                );
            }
        }
        assert!(page.contains(".SH \"EXIT STATUS\""));
        assert!(page.contains(".SH \"EXAMPLES\""));
    }
}
