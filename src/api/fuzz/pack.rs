//! Several files in one fuzz input: the `chain_open` target opens a whole disk (a descriptor,
//! its extents, its parents), and libFuzzer mutates one byte string.

/// Separates the files packed into one input. It starts with a newline, which the splitter
/// looks for first.
const FILE_SEPARATOR: &[u8] = b"\n@@VDLFILE@@";
/// Most files one input may unpack into.
const MAX_FILES: usize = 6;
/// Longest file name accepted in a packed input.
const MAX_NAME: usize = 40;

/// Splits a `chain_open` input into files: parts separated by `\n@@VDLFILE@@`, each `name\n`
/// then the content. Names are plain file names (letters, digits, `.`, `-`, `_`, at most 40
/// bytes); parts with any other name are skipped, and a later part replaces an earlier one of
/// the same name. At most 6 files are taken. The first file is the disk to open.
///
/// ```
/// use vixDiskLib::fuzz::unpack_files;
///
/// let files = unpack_files(b"a.vmdk\nfirst\n@@VDLFILE@@../evil\nx\n@@VDLFILE@@b.vmdk\n");
/// assert_eq!(files, [("a.vmdk".to_string(), &b"first"[..]), ("b.vmdk".to_string(), &b""[..])]);
/// ```
pub fn unpack_files(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out: Vec<(String, &[u8])> = Vec::new();
    let mut rest = data;
    while out.len() < MAX_FILES {
        let (part, next) = match find(rest, FILE_SEPARATOR) {
            Some(at) => (&rest[..at], Some(&rest[at + FILE_SEPARATOR.len()..])),
            None => (rest, None),
        };
        if let Some(nl) = find_newline(part) {
            let name = &part[..nl];
            let ok = !name.is_empty()
                && name.len() <= MAX_NAME
                && name != b"."
                && name != b".."
                && name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if ok {
                let name = String::from_utf8_lossy(name).into_owned();
                out.retain(|(n, _)| *n != name);
                out.push((name, &part[nl + 1..]));
            }
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out
}

/// Packs files into one `chain_open` input (the inverse of [`unpack_files`]), for making
/// seeds. The first file is the one the target opens.
///
/// ```
/// use vixDiskLib::fuzz::{pack_files, unpack_files};
///
/// let packed = pack_files(&[("disk.vmdk", b"descriptor"), ("disk-flat.vmdk", &[0u8; 512])]);
/// let files = unpack_files(&packed);
/// assert_eq!(files.len(), 2);
/// assert_eq!(files[0], ("disk.vmdk".to_string(), &b"descriptor"[..]));
/// assert_eq!(files[1].1, &[0u8; 512][..]);
/// ```
pub fn pack_files(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, content)) in files.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(FILE_SEPARATOR);
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(content);
    }
    out
}

/// Where `needle` (which starts with a newline) first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(nl) = find_newline(&hay[from..]) {
        let at = from + nl;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Position of the first newline. Tests 64 bytes per step with word arithmetic: the fuzzer
/// records every comparison, and one per byte made packed inputs of 100+ KiB (mostly zeros)
/// spend most of their time just being split.
fn find_newline(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(block) = hay.get(at..at + 64) {
        let mut hit = 0u64;
        for word in block.chunks_exact(8) {
            let x =
                u64::from_ne_bytes(word.try_into().expect("8 bytes")) ^ (ONES * u64::from(b'\n'));
            hit |= x.wrapping_sub(ONES) & !x & HIGHS;
        }
        if hit != 0 {
            break;
        }
        at += 64;
    }
    hay[at..].iter().position(|&b| b == b'\n').map(|p| at + p)
}
