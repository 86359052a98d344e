//! `vixdisk check [--repair]` on streamOptimized disks: a stream cut short is reported with
//! what salvage would keep and lose, `--repair` rebuilds it (qemu-img checks the result), and
//! a stream no repair can account for is refused as an invalid disk, unchanged.

mod common;

use common::*;

/// A 1 MiB qemu stream of 16 distinct grains, cut after about half of its bytes.
fn cut_stream(dir: &std::path::Path) -> std::path::PathBuf {
    let raw = dir.join("src.raw");
    let mut bytes = vec![0u8; 1 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (i, c) in bytes.chunks_mut(8).enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Every other 64 KiB grain random (incompressible), the rest a fill byte.
        let v = if (i * 8 / 65536) % 2 == 0 {
            x
        } else {
            0x0101_0101_0101_0101 * (i as u64 % 7 + 1)
        };
        c.copy_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&raw, &bytes).unwrap();
    let stream = dir.join("s.vmdk");
    tool(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vmdk",
            "-o",
            "subformat=streamOptimized",
            s(&raw),
            s(&stream),
        ],
    );
    let whole = std::fs::read(&stream).unwrap();
    std::fs::write(&stream, &whole[..whole.len() / 2]).unwrap();
    stream
}

#[test]
fn check_reports_and_repair_salvages_a_stream_cut_short() {
    let d = tempfile::tempdir().unwrap();
    let disk = cut_stream(d.path());
    let out = run(&["check", s(&disk)]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("problem (repairable)"), "{text}");
    assert!(text.contains("salvage (--repair): would keep"), "{text}");
    let out = run(&["check", "--json", s(&disk)]);
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report["outcome"], "needs-repair");
    let recovered = report["salvage"]["recovered_sectors"].as_u64().unwrap();
    let lost = report["salvage"]["lost_sectors"].as_u64().unwrap();
    // 16 grains of 128 sectors: what is not recovered is lost (qemu's tables survive the cut).
    assert!(recovered > 0 && lost > 0, "{report}");
    assert_eq!(recovered + lost, 16 * 128, "{report}");
    let text = ok(&["check", "--repair", s(&disk)]);
    assert!(
        text.contains(&format!(
            "{recovered} sectors recovered, {lost} sectors lost"
        )),
        "{text}"
    );
    assert!(text.contains("salvaged: kept"), "{text}");
    qemu_check(&disk);
    assert!(ok(&["check", s(&disk)]).contains("no problems found"));
}

#[test]
fn a_stream_with_an_unknown_marker_is_refused_as_invalid() {
    let d = tempfile::tempdir().unwrap();
    let disk = cut_stream(d.path());
    let mut b = std::fs::read(&disk).unwrap();
    // An unknown metadata marker (type 9) where the grains start.
    let overhead = u64::from_le_bytes(b[64..72].try_into().unwrap()) as usize * 512;
    let mut m = vec![0u8; 512];
    m[12] = 9;
    b.splice(overhead..overhead, m);
    std::fs::write(&disk, &b).unwrap();
    let out = run(&["check", "--repair", s(&disk)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("VIX_E_DISK_INVALIDDISK"), "{err}");
    assert!(text.contains("problem (not repairable)"), "{text}");
    assert!(text.contains("unknown type 9"), "{text}");
    assert_eq!(std::fs::read(&disk).unwrap(), b, "a refused repair wrote");
}
