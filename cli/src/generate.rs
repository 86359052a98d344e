//! `vixdisk generate-docs DIR` (hidden): the man pages and shell completions, generated from
//! the same clap definitions as `--help`, so they cannot drift from the tool. The CMake build
//! runs it and `cmake --install` copies the result under PREFIX/share.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::failure::{CmdResult, OnFile};

/// Where each file goes below DIR (the directories bash-completion, zsh and fish search
/// under PREFIX/share).
const COMPLETIONS: &[(Shell, &str, &str)] = &[
    (Shell::Bash, "bash-completion/completions", "vixdisk"),
    (Shell::Zsh, "zsh/site-functions", "_vixdisk"),
    (Shell::Fish, "fish/vendor_completions.d", "vixdisk.fish"),
];

/// Writes DIR/man/man1/vixdisk*.1 (one page per subcommand) and the completions.
pub fn run(dir: &Path) -> CmdResult {
    let man = dir.join("man/man1");
    std::fs::create_dir_all(&man).on(&man)?;
    // Pages of subcommands that no longer exist must not be installed from an old build.
    for entry in std::fs::read_dir(&man).on(&man)? {
        let path = entry.on(&man)?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("vixdisk") && name.ends_with(".1") {
            std::fs::remove_file(&path).on(&path)?;
        }
    }
    clap_mangen::generate_to(Cli::command(), &man).on(&man)?;
    for &(shell, sub, name) in COMPLETIONS {
        let sub = dir.join(sub);
        std::fs::create_dir_all(&sub).on(&sub)?;
        let path = sub.join(name);
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "vixdisk", &mut text);
        File::create(&path)
            .and_then(|mut f| f.write_all(&text))
            .on(&path)?;
    }
    say!("wrote man pages and completions into {}", dir.display());
    Ok(())
}
