//! Create(STREAM_OPTIMIZED) followed by strictly sequential writes: qemu-img reads the result,
//! writes that go backwards or into stored grains are refused without damage, and a stream can
//! be reopened and extended.

mod common;

use common::*;
use vixDiskLib::vmdk::create::{CreateSpec, DiskKind, create};
use vixDiskLib::vmdk::geometry::Adapter;

const MIB: usize = 1 << 20;

fn new_stream(path: &std::path::Path, sectors: u64) {
    let spec = CreateSpec {
        kind: DiskKind::StreamOptimized,
        capacity: sectors,
        adapter: Adapter::LsiLogic,
        hw_version: 7,
    };
    create(path, &spec, &mut |_| {}).unwrap();
}

#[test]
fn sequential_writes_into_a_new_stream_read_back_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "s.vmdk");
    // Not a multiple of the grain: the last grain is short.
    let sectors = 16 * 2048 + 72;
    new_stream(&path, sectors);
    let mut model = vec![0u8; sectors as usize * 512];
    {
        let d = open_rw(&path);
        write_pattern(&d, &mut model, 0, MIB, 0x41);
        write_pattern(&d, &mut model, MIB + 512, 1536, 0x42); // partial grain
        write_pattern(&d, &mut model, MIB + 8192, 512, 0x43); // same grain, further on
        write_pattern(&d, &mut model, 9 * MIB, 3 * MIB, 0x44); // skips grains: they stay empty
        write_pattern(&d, &mut model, sectors as usize * 512 - 4096, 4096, 0x45); // the short tail
        d.close().unwrap();
    }
    assert!(read_all(&open_ro(&path)) == model);
    if have_qemu() {
        let (code, out) = sh(&format!("qemu-img info '{}'", path.display()));
        assert!(
            code == 0 && out.contains("streamOptimized") && out.contains("compressed: true"),
            "{out}"
        );
        assert!(qemu_check(&path));
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &path));
    }
}

#[test]
fn backwards_writes_are_refused_and_the_stream_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = p(dir.path(), "s.vmdk");
    new_stream(&path, 8 * 2048);
    let mut model = vec![0u8; 8 * MIB];
    let d = open_rw(&path);
    write_pattern(&d, &mut model, 2 * MIB, 64 * 1024, 0x51);
    assert!(d.write(0, &[1u8; 512]).is_err(), "an earlier grain");
    assert!(
        d.write((2 * MIB / 512) as u64, &[1u8; 512]).is_err(),
        "an earlier offset in the grain"
    );
    write_pattern(&d, &mut model, 3 * MIB, 512, 0x52);
    // Flush writes the tail; writing resumes at the next grain.
    d.flush().unwrap();
    assert!(
        d.write((3 * MIB / 512) as u64 + 8, &[1u8; 512]).is_err(),
        "the flushed grain is stored"
    );
    write_pattern(&d, &mut model, 4 * MIB, 512, 0x53);
    d.close().unwrap();
    drop(d);
    assert!(read_all(&open_ro(&path)) == model);
    // Reopened, the stream is extended after its last grain.
    {
        let d = open_rw(&path);
        assert!(d.write(0, &[1u8; 512]).is_err());
        write_pattern(&d, &mut model, 6 * MIB, 128 * 1024, 0x54);
        d.close().unwrap();
    }
    assert!(read_all(&open_ro(&path)) == model);
    if have_qemu() {
        assert!(qemu_check(&path));
        let raw = p(dir.path(), "m.raw");
        save_raw(&model, &raw);
        assert!(qemu_same(&raw, &path));
    }
}
