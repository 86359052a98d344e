//! Workstation raw-disk descriptors (issue 20, part 2): `fullDevice` and `partitionedDevice`
//! descriptors name host block devices by absolute path. They open only when the InitEx config
//! file sets `vixDiskLib.allowRawDevices = "TRUE"`, and even then only block devices may lie
//! outside the descriptor's directory (plus the partition-table file beside it). Uses loop
//! devices, so it needs root and losetup; elsewhere it says so and returns.
//!
//! Its own test binary: the opt-in is library-wide state set by InitEx.

mod common;

use std::ffi::CString;
use std::path::{Path, PathBuf};

use common::{p, sh};
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::ffi::codes::{VIX_E_DISK_INVALIDDISK, VIX_E_FILE_READ_ONLY, VIX_E_NOT_SUPPORTED};
use vixDiskLib::ffi::connect::{VixDiskLib_Connect, VixDiskLib_Disconnect};
use vixDiskLib::ffi::disk::{VixDiskLib_Close, VixDiskLib_Open};
use vixDiskLib::ffi::errors::to_vix;
use vixDiskLib::ffi::io::{VixDiskLib_Read, VixDiskLib_Write};
use vixDiskLib::ffi::library::{VixDiskLib_Exit, VixDiskLib_InitEx};
use vixDiskLib::ffi::types::{
    VIXDISKLIB_FLAG_OPEN_READ_ONLY, VixDiskLibConnection, VixDiskLibHandle,
};

const VIX_OK: i64 = 0;

/// A loop device over a file, detached when dropped.
struct Loop {
    dev: PathBuf,
}

impl Loop {
    fn attach(file: &Path) -> Option<Loop> {
        let (code, out) = sh(&format!("losetup --find --show '{}'", file.display()));
        if code != 0 {
            eprintln!("loop devices unavailable (need root and losetup): skipping ({out})");
            return None;
        }
        Some(Loop {
            dev: PathBuf::from(out.trim()),
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        sh(&format!("losetup -d '{}'", self.dev.display()));
    }
}

fn init(config: Option<&Path>) {
    let null = std::ptr::null_mut();
    let cfg = config.map(|c| CString::new(c.to_str().unwrap()).unwrap());
    let code = VixDiskLib_InitEx(
        6,
        5,
        null,
        null,
        null,
        std::ptr::null(),
        cfg.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
    );
    assert_eq!(code as i64, VIX_OK, "InitEx");
}

/// Opens `path` through the C API; returns the error code or reads the whole disk.
fn c_open_read(path: &Path, sectors: u64) -> Result<Vec<u8>, i64> {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    let mut conn: VixDiskLibConnection = std::ptr::null_mut();
    assert_eq!(
        VixDiskLib_Connect(std::ptr::null(), &mut conn) as i64,
        VIX_OK
    );
    let mut h: VixDiskLibHandle = std::ptr::null_mut();
    let code = VixDiskLib_Open(conn, c.as_ptr(), 0, &mut h) as i64;
    if code != VIX_OK {
        VixDiskLib_Disconnect(conn);
        return Err(code);
    }
    let mut buf = vec![0u8; sectors as usize * 512];
    assert_eq!(
        VixDiskLib_Read(h, 0, sectors, buf.as_mut_ptr()) as i64,
        VIX_OK
    );
    // Writing a host disk through a descriptor is refused (read-only device extents).
    let data = [0x5au8; 512];
    for sector in [0, 70] {
        assert_eq!(
            VixDiskLib_Write(h, sector, 1, data.as_ptr()) as i64,
            VIX_E_FILE_READ_ONLY as i64
        );
    }
    assert_eq!(VixDiskLib_Close(h) as i64, VIX_OK);
    let mut h: VixDiskLibHandle = std::ptr::null_mut();
    assert_eq!(
        VixDiskLib_Open(conn, c.as_ptr(), VIXDISKLIB_FLAG_OPEN_READ_ONLY, &mut h) as i64,
        VIX_OK
    );
    assert_eq!(VixDiskLib_Close(h) as i64, VIX_OK);
    VixDiskLib_Disconnect(conn);
    Ok(buf)
}

fn descriptor(create_type: &str, extents: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"windows-1252\"\nCID=5f2a3c11\nparentCID=ffffffff\ncreateType=\"{create_type}\"\n\n# Extent description\n{extents}\n\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"19\"\nddb.adapterType = \"lsilogic\"\n"
    )
}

#[test]
fn raw_disk_descriptors_open_only_with_the_opt_in_and_only_on_block_devices() {
    let dir = tempfile::tempdir().unwrap();
    // An 8192-sector "host disk" whose every sector says where it is.
    let mut disk = vec![0u8; 8192 * 512];
    for (i, chunk) in disk.chunks_mut(512).enumerate() {
        chunk.fill((i % 251) as u8 + 1);
    }
    let backing = p(dir.path(), "hostdisk.img");
    std::fs::write(&backing, &disk).unwrap();
    let Some(lo) = Loop::attach(&backing) else {
        return;
    };
    let dev = lo.dev.display().to_string();
    // partitionedDevice: the partition table lives beside the descriptor, two partitions map
    // to the device at their offsets, the gap between them is ZERO.
    let pt = vec![0xeeu8; 63 * 512];
    std::fs::write(p(dir.path(), "raw-pt.vmdk"), &pt).unwrap();
    let part = p(dir.path(), "raw.vmdk");
    std::fs::write(
        &part,
        descriptor(
            "partitionedDevice",
            &format!(
                "RW 63 FLAT \"raw-pt.vmdk\" 0\nRW 2048 FLAT \"{dev}\" 63\nRW 1000 ZERO\nRW 2000 FLAT \"{dev}\" 3111"
            ),
        ),
    )
    .unwrap();
    let mut expected = pt.clone();
    expected.extend_from_slice(&disk[63 * 512..2111 * 512]);
    expected.extend(std::iter::repeat_n(0u8, 1000 * 512));
    expected.extend_from_slice(&disk[3111 * 512..5111 * 512]);
    let full = p(dir.path(), "full.vmdk");
    std::fs::write(
        &full,
        descriptor("fullDevice", &format!("RW 8192 FLAT \"{dev}\" 0")),
    )
    .unwrap();

    // Without the opt-in: not supported, and the message (the log line) names the key.
    init(None);
    assert_eq!(c_open_read(&part, 5111), Err(VIX_E_NOT_SUPPORTED as i64));
    assert_eq!(c_open_read(&full, 8192), Err(VIX_E_NOT_SUPPORTED as i64));
    let err = Disk::open(&part, OpenOptions::default()).err().unwrap();
    assert!(
        err.to_string().contains("vixDiskLib.allowRawDevices"),
        "{err}"
    );
    VixDiskLib_Exit();

    // A config file that says something else is no opt-in either.
    let config = p(dir.path(), "vddk.conf");
    std::fs::write(&config, "vixDiskLib.allowRawDevices = \"FALSE\"\n").unwrap();
    init(Some(&config));
    assert_eq!(c_open_read(&full, 8192), Err(VIX_E_NOT_SUPPORTED as i64));
    VixDiskLib_Exit();

    // With the opt-in: both descriptors read the device where their extents say.
    std::fs::write(
        &config,
        "# raw disks\nvixDiskLib.allowRawDevices = \"TRUE\"\n",
    )
    .unwrap();
    init(Some(&config));
    assert!(c_open_read(&part, 5111).unwrap() == expected);
    assert!(c_open_read(&full, 8192).unwrap() == disk);
    assert_eq!(
        std::fs::read(&backing).unwrap(),
        disk,
        "the host disk changed"
    );

    // Even then, nothing but block devices outside the directory: not a regular file
    // elsewhere, not a relative escape.
    let hostile = p(dir.path(), "hostile.vmdk");
    let outside = tempfile::tempdir().unwrap();
    let secret = p(outside.path(), "secret");
    std::fs::write(&secret, vec![0x42u8; 4096]).unwrap();
    for extent in [
        format!("RW 8 FLAT \"{}\" 0", secret.display()),
        "RW 8 FLAT \"../secret\" 0".to_string(),
        "RW 8 FLAT \"/dev/null\" 0".to_string(),
    ] {
        std::fs::write(&hostile, descriptor("fullDevice", &extent)).unwrap();
        let code = c_open_read(&hostile, 8).unwrap_err();
        assert_eq!(code, VIX_E_DISK_INVALIDDISK as i64, "{extent}");
        let err = Disk::open(&hostile, OpenOptions::default()).err().unwrap();
        assert_eq!(to_vix(&err) as i64, code, "{extent}: {err}");
    }
    // Other createTypes never reach devices, opt-in or not.
    std::fs::write(
        &hostile,
        descriptor("monolithicFlat", &format!("RW 8 FLAT \"{dev}\" 0")),
    )
    .unwrap();
    assert_eq!(c_open_read(&hostile, 8), Err(VIX_E_DISK_INVALIDDISK as i64));
    VixDiskLib_Exit();
    drop(lo);
}
