//! The one place where engine errors become VixError codes (the C text of a code is in
//! `error_texts`).

use super::types::VixError;
use crate::Error;

/// Maps an engine error to the VixError a VDDK client expects for it (the engine's
/// `ErrorKind`; `error_texts`' tests check each kind's code against the C name table).
pub fn to_vix(e: &Error) -> VixError {
    e.kind().code()
}
