//! How a command fails: the message on stderr and the documented exit code (docs/cli.md).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use vixDiskLib::Error;

/// Exit code: the operation failed (the VixError is printed).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage (clap uses it for argument errors too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: `check` found problems and did not repair them.
pub const EXIT_NEEDS_REPAIR: u8 = 3;
/// Exit code: `check` found problems that cannot be repaired.
pub const EXIT_CANT_REPAIR: u8 = 4;
// Exit code 5 ("not available in this build") is no longer used: every command works.
/// Exit code: the change id an incremental/differential backup (or `map --changed-since`)
/// needs cannot be answered (another disk's, too old, tracking off or reset): do a full backup.
pub const EXIT_NEED_FULL: u8 = 6;
/// Exit code: stopped by Ctrl-C (SIGINT), SIGTERM or SIGHUP; 128 + SIGINT as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The engine (or a file the CLI itself reads or writes) reported an error on `file`.
    Engine { file: PathBuf, error: Error },
    /// The arguments make no sense together.
    Usage(String),
    /// `check` verdict: problems left as they are.
    NeedsRepair(String),
    /// `check` verdict: problems that cannot be repaired.
    CantRepair(String),
    /// The disk cannot say what changed since the change id asked about.
    NeedFull { file: PathBuf, error: Error },
    /// The user pressed Ctrl-C; every disk was left consistent.
    Interrupted,
}

impl Failure {
    /// The exit code documented for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Engine { .. } => EXIT_FAILED,
            Failure::Usage(_) => EXIT_USAGE,
            Failure::NeedsRepair(_) => EXIT_NEEDS_REPAIR,
            Failure::CantRepair(_) => EXIT_CANT_REPAIR,
            Failure::NeedFull { .. } => EXIT_NEED_FULL,
            Failure::Interrupted => EXIT_INTERRUPTED,
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Engine { file, error } => {
                // The VixError a C client would get for the same failure, so users can look it
                // up in VMware's documentation.
                let name = error.kind().name();
                write!(f, "{name}: {}: {error}", file.display())
            }
            Failure::NeedFull { file, error } => {
                let name = error.kind().name();
                let text = error.to_string();
                write!(f, "{name}: {}: {text}", file.display())?;
                if !text.contains("do a full backup") {
                    write!(f, "; do a full backup")?;
                }
                Ok(())
            }
            Failure::Usage(msg) => write!(f, "usage: {msg}"),
            Failure::NeedsRepair(msg) => {
                write!(f, "VIX_E_DISK_NEEDSREPAIR: {msg} (run with --repair)")
            }
            Failure::CantRepair(msg) => write!(f, "VIX_E_DISK_CANTREPAIR: {msg}"),
            Failure::Interrupted => write!(f, "interrupted; every disk was left consistent"),
        }
    }
}

/// `error` about `file`, as `NeedFull` when it says a change id cannot be answered.
pub fn since_failure(file: &Path, error: Error) -> Failure {
    let file = file.to_path_buf();
    match error {
        Error::ChangeIdUnknown(_) | Error::NotTracked(_) => Failure::NeedFull { file, error },
        error => Failure::Engine { file, error },
    }
}

/// Result of a command.
pub type CmdResult<T = ()> = Result<T, Failure>;

/// Attaches the file a failure concerns to engine results.
pub trait OnFile<T> {
    /// Turns an engine error into a `Failure` about `file`.
    fn on(self, file: &Path) -> CmdResult<T>;
}

impl<T> OnFile<T> for vixDiskLib::Result<T> {
    fn on(self, file: &Path) -> CmdResult<T> {
        self.map_err(|error| Failure::Engine {
            file: file.to_path_buf(),
            error,
        })
    }
}

impl<T> OnFile<T> for std::io::Result<T> {
    fn on(self, file: &Path) -> CmdResult<T> {
        self.map_err(|e| Failure::Engine {
            file: file.to_path_buf(),
            error: Error::io(file, e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_print_the_vix_name_the_file_and_the_cause() {
        let f = Failure::Engine {
            file: "d.vmdk".into(),
            error: Error::FileNotFound("d.vmdk".into()),
        };
        assert_eq!(
            f.to_string(),
            "VIX_E_FILE_NOT_FOUND: d.vmdk: file not found: d.vmdk"
        );
        let locked = Failure::Engine {
            file: "d.vmdk".into(),
            error: Error::Locked("d.vmdk".into()),
        };
        assert!(
            locked
                .to_string()
                .starts_with("VIX_E_FILE_ALREADY_LOCKED: ")
        );
    }

    #[test]
    fn unanswerable_change_ids_ask_for_a_full_backup() {
        let f = since_failure(Path::new("d.vmdk"), Error::NotTracked("no tracking".into()));
        assert_eq!(f.exit_code(), ExitCode::from(EXIT_NEED_FULL));
        assert!(f.to_string().ends_with("; do a full backup"), "{f}");
        let f = since_failure(Path::new("d.vmdk"), Error::InvalidArg("x".into()));
        assert_eq!(f.exit_code(), ExitCode::from(EXIT_FAILED));
    }
}
