//! Descriptor bytes and text: decoding by the declared `encoding`, and encoding back byte for byte.

use super::{Descriptor, unquote};

/// True if an `encoding=` value names UTF-8 (or is absent, which means UTF-8 or ASCII).
fn is_utf8_name(encoding: Option<&str>) -> bool {
    encoding.is_none_or(|e| {
        let e = e.trim().to_ascii_lowercase();
        e == "utf-8" || e == "utf8"
    })
}

/// The `encoding=` value of raw descriptor bytes, if a line declares one (it is ASCII in every
/// encoding VMware writes).
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    bytes.split(|&b| b == b'\n').find_map(|line| {
        let line = String::from_utf8_lossy(line);
        let (key, value) = line.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("encoding")
            .then(|| unquote(value.trim_end_matches('\r')).to_string())
    })
}

/// Decodes descriptor bytes to text without losing any. UTF-8 text (or text declaring no other
/// encoding that is valid UTF-8) is taken as is; anything else (Workstation's
/// `encoding="windows-1252"`, or bytes that are not UTF-8) is read byte for byte as ISO 8859-1,
/// so `to_bytes` writes every byte back as it was (a lossy decode would turn a non-ASCII extent
/// or parent name into U+FFFD on the first rewrite, and the descriptor would name another file).
pub fn decode_text(bytes: &[u8]) -> String {
    let declared = declared_encoding(bytes);
    if is_utf8_name(declared.as_deref())
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        return text.to_string();
    }
    bytes.iter().map(|&b| char::from(b)).collect()
}

impl Descriptor {
    /// The rendered text as bytes in the descriptor's encoding: byte for byte (the inverse of
    /// `decode_text`) when it declares a non-UTF-8 encoding and every character fits a byte,
    /// UTF-8 otherwise.
    pub fn to_bytes(&self) -> Vec<u8> {
        let text = self.render();
        if !is_utf8_name(self.encoding.as_deref()) && text.chars().all(|c| u32::from(c) <= 0xff) {
            return text.chars().map(|c| u32::from(c) as u8).collect();
        }
        text.into_bytes()
    }
}
