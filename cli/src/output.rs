//! Standard output that tolerates a reader going away (`vixdisk map disk | head`): a broken
//! pipe ends the program quietly with exit code 0, as other Unix tools written in Rust do,
//! instead of the panic `println!` would raise. Output is only printed after every disk that
//! was written has been closed, so stopping there is safe.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Writes one line to stdout.
pub fn line(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("vixdisk: cannot write to standard output: {e}");
            std::process::exit(i32::from(crate::failure::EXIT_FAILED));
        }
    }
}
