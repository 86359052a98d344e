//! VMware disk types we do not read (issue 20, part 2): raw device mappings, vSAN, encrypted
//! disks, unknown createTypes and extent types are VIX_E_NOT_SUPPORTED whose message (the log
//! line) names the type; never INVALIDDISK or NEEDSREPAIR, and CheckRepair neither calls them
//! damaged nor "salvages" them. Raw-disk descriptors without the opt-in name the config key.

mod common;

use std::path::Path;

use common::p;
use vixDiskLib::chain::{Disk, OpenOptions};
use vixDiskLib::error::Error;
use vixDiskLib::ffi::codes::VIX_E_NOT_SUPPORTED;
use vixDiskLib::ffi::errors::to_vix;
use vixDiskLib::vmdk::check::check_disk;

fn descriptor(create_type: &str, extents: &str, extra: &str) -> String {
    format!(
        "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\nparentCID=ffffffff\n{extra}createType=\"{create_type}\"\n\n# Extent description\n{extents}\n\n# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\nddb.virtualHWVersion = \"14\"\n"
    )
}

/// Writes `text` as `d.vmdk` (with a 1 MiB file `x.bin` for its extents to name) and returns
/// the open error, which must be NotSupported and mention `needle`; CheckRepair, with and
/// without repair, must fail the same way and leave the descriptor as it was.
fn refused(dir: &Path, text: &str, needle: &str) -> Error {
    let path = p(dir, "d.vmdk");
    std::fs::write(&path, text).unwrap();
    std::fs::write(p(dir, "x.bin"), vec![7u8; 1 << 20]).unwrap();
    for read_only in [true, false] {
        let err = Disk::open(
            &path,
            OpenOptions {
                read_only,
                single_link: false,
            },
        )
        .err()
        .unwrap_or_else(|| panic!("{needle}: opened"));
        assert_eq!(to_vix(&err), VIX_E_NOT_SUPPORTED, "{needle}: {err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    for repair in [false, true] {
        let err = check_disk(&path, repair)
            .err()
            .unwrap_or_else(|| panic!("{needle}: CheckRepair(repair={repair}) judged it"));
        assert_eq!(to_vix(&err), VIX_E_NOT_SUPPORTED, "{needle}: {err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "{needle}");
    Disk::open(&path, OpenOptions::default()).err().unwrap()
}

#[test]
fn vmware_types_we_do_not_read_are_not_supported_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("vmfsRDM", "RW 2048 VMFSRDM \"x.bin\"", "vmfsRDM"),
        (
            "vmfsRawDeviceMap",
            "RW 2048 VMFSRDM \"x.bin\"",
            "vmfsRawDeviceMap",
        ),
        (
            "vmfsPassthroughRawDeviceMap",
            "RW 2048 VMFSRDM \"x.bin\"",
            "vmfsPassthroughRawDeviceMap",
        ),
        ("vmfsRaw", "RW 2048 VMFSRAW \"x.bin\"", "vmfsRaw"),
        (
            "vsanSparse",
            "RW 2048 VSANSPARSE \"vsan://52a3-obj\"",
            "vsanSparse",
        ),
        (
            "hyperSparse2030",
            "RW 2048 FLAT \"x.bin\" 0",
            "hyperSparse2030",
        ),
        // A known createType with extent types we do not read: the extent type is named.
        ("custom", "RW 2048 VMFSRDM \"x.bin\"", "VMFSRDM"),
        ("vmfs", "RW 2048 VMFSRAW \"x.bin\"", "VMFSRAW"),
        ("monolithicFlat", "RW 2048 NEWFLAT \"x.bin\" 0", "NEWFLAT"),
    ];
    for (create_type, extents, needle) in cases {
        refused(dir.path(), &descriptor(create_type, extents, ""), needle);
    }
}

#[test]
fn an_encrypted_descriptor_is_not_supported_and_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    // Workstation's encrypted disks: the real descriptor is inside encryption.data.
    let text = "# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nencryption.keySafe = \"vmware:key/list/(pair/(null/vmware:key%2fencrypted%2f0,HMAC-SHA-1,AAAA))\"\nencryption.data = \"QUJDREVGR0g=\"\n";
    refused(dir.path(), text, "encryption.keySafe");
    // With a readable descriptor beside the keys, still refused: the data is encrypted.
    let text = descriptor(
        "monolithicFlat",
        "RW 2048 FLAT \"x.bin\" 0",
        "encryption.keySafe = \"vmware:key/list/()\"\n",
    );
    refused(dir.path(), &text, "encryption.keySafe");
}

#[test]
fn raw_disk_descriptors_without_the_opt_in_name_the_config_key() {
    let dir = tempfile::tempdir().unwrap();
    for create_type in ["fullDevice", "partitionedDevice"] {
        let text = descriptor(
            create_type,
            "RW 63 FLAT \"x.bin\" 0\nRW 2048 FLAT \"/dev/sda\" 63\nRW 100 ZERO",
            "",
        );
        let path = p(dir.path(), "d.vmdk");
        std::fs::write(&path, text).unwrap();
        let err = Disk::open(&path, OpenOptions::default()).err().unwrap();
        assert_eq!(to_vix(&err), VIX_E_NOT_SUPPORTED, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("vixDiskLib.allowRawDevices") && msg.contains(create_type),
            "{msg}"
        );
        let err = check_disk(&path, true).err().unwrap();
        assert_eq!(to_vix(&err), VIX_E_NOT_SUPPORTED, "{err}");
    }
}

#[test]
fn known_types_still_open() {
    // The type check must not refuse what we read: every createType we write, plus ESXi's.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(p(dir.path(), "x.bin"), vec![7u8; 1 << 20]).unwrap();
    for create_type in [
        "monolithicFlat",
        "twoGbMaxExtentFlat",
        "vmfs",
        "vmfsThin",
        "vmfsPreallocated",
        "vmfsEagerZeroedThick",
        "custom",
        "VMFS",
    ] {
        let path = p(dir.path(), "ok.vmdk");
        std::fs::write(
            &path,
            descriptor(create_type, "RW 2048 FLAT \"x.bin\" 0", ""),
        )
        .unwrap();
        let d = common::open_ro(&path);
        let mut buf = [0u8; 512];
        d.read(2047, &mut buf).unwrap();
        assert_eq!(buf, [7u8; 512], "{create_type}");
    }
}

#[test]
fn create_with_4096_byte_sectors_makes_a_512_byte_disk_and_warns() {
    use std::sync::{Arc, Mutex};
    use vixDiskLib::ffi::connect::{VixDiskLib_Connect, VixDiskLib_Disconnect};
    use vixDiskLib::ffi::disk::VixDiskLib_Create;
    use vixDiskLib::ffi::types::{VixDiskLibConnection, VixDiskLibCreateParams};
    use vixDiskLib::log::{Level, configure};
    common::ffi_init();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    configure(
        Some(Box::new(move |level, msg| {
            if level == Level::Warning {
                sink.lock().unwrap().push(msg.to_string());
            }
        })),
        Level::Info,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut conn: VixDiskLibConnection = std::ptr::null_mut();
    assert_eq!(VixDiskLib_Connect(std::ptr::null(), &mut conn), 0);
    for (name, logical, physical, warns) in [
        ("a.vmdk", 0, 0, false),
        ("b.vmdk", 512, 512, false),
        ("c.vmdk", 4096, 4096, true),
        ("d.vmdk", 512, 4096, true),
    ] {
        let path = p(dir.path(), name);
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        let params = VixDiskLibCreateParams {
            diskType: 1, // VIXDISKLIB_DISK_MONOLITHIC_SPARSE
            adapterType: 3,
            hwVersion: 7,
            capacity: 2048,
            logicalSectorSize: logical,
            physicalSectorSize: physical,
        };
        lines.lock().unwrap().clear();
        assert_eq!(
            VixDiskLib_Create(conn, c.as_ptr(), &params, None, std::ptr::null_mut()),
            0
        );
        let warned = lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("physicalSectorSize") && l.contains("512-byte sectors"));
        assert_eq!(warned, warns, "{name}: {:?}", lines.lock().unwrap());
        assert_eq!(common::open_ro(&path).capacity(), 2048, "{name}");
    }
    VixDiskLib_Disconnect(conn);
    configure(None, Level::Info);
}
