//! The committed man pages must match what `command()` renders now.
//! Regenerate with `UPDATE_MAN=1 cargo test -p lampvault-bins --test man`.

use std::path::PathBuf;

#[test]
fn man_pages_are_up_to_date() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../man");
    let update = std::env::var_os("UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    for page in lampvault_bins::man_pages() {
        for (file, want) in
            lampvault_bins::common::render_man_pages((page.command)(), page.section, page.tail)
        {
            let path = dir.join(file);
            if update {
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read(&path).ok().as_deref() != Some(&want[..]) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale man pages (run UPDATE_MAN=1 cargo test --test man): {stale:?}"
    );
}
