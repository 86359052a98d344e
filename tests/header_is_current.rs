//! The committed C header must equal what cbindgen generates from the current sources
//! (refresh it with `VIXDISKLIB_BLESS_HEADER=1 cargo build`).

#[test]
fn committed_header_matches_a_fresh_generation() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/vixDiskLib.h"));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/vixDiskLib.h"))
            .expect("include/vixDiskLib.h is committed");
    assert!(
        fresh == committed,
        "include/vixDiskLib.h is stale: run `VIXDISKLIB_BLESS_HEADER=1 cargo build` and commit it"
    );
}

#[test]
fn header_declares_every_exported_function() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/vixDiskLib.h"));
    for name in [
        "InitEx",
        "Init",
        "Exit",
        "ListTransportModes",
        "AllocateConnectParams",
        "FreeConnectParams",
        "Connect",
        "ConnectEx",
        "Disconnect",
        "Cleanup",
        "PrepareForAccess",
        "EndAccess",
        "GetConnectParams",
        "Create",
        "CreateChild",
        "Open",
        "Close",
        "GetInfo",
        "FreeInfo",
        "GetTransportMode",
        "Read",
        "Write",
        "ReadAsync",
        "WriteAsync",
        "Wait",
        "Flush",
        "QueryAllocatedBlocks",
        "FreeBlockList",
        "GetMetadataKeys",
        "ReadMetadata",
        "WriteMetadata",
        "Clone",
        "SpaceNeededForClone",
        "Grow",
        "Shrink",
        "Defragment",
        "Rename",
        "Unlink",
        "CheckRepair",
        "IsAttachPossible",
        "Attach",
        "GetErrorText",
        "FreeErrorText",
        "SetInjectedFault",
        "IsFaultEnabled_Func",
        "SetConfigOption",
        "OpenEx",
        "QueryChangedAreas",
        "FreeChangedAreas",
        "GetConnectionFromDisk",
    ] {
        assert!(
            header.contains(&format!("VixDiskLib_{name}(")),
            "VixDiskLib_{name} is missing"
        );
    }
}

#[test]
fn header_defines_only_vmware_names() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/vixDiskLib.h"));
    for line in header.lines().filter(|l| l.starts_with("#define ")) {
        let name = line.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            name.starts_with("VIX_") || name.starts_with("VIXDISKLIB_") || name == "_VIXDISKLIB_H_",
            "the engine leaked `{name}` into the C header: make it pub(crate)"
        );
    }
}

#[test]
fn committed_extension_header_matches_a_fresh_generation() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/vixDiskLibExt.h"));
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/include/vixDiskLibExt.h"
    ))
    .expect("include/vixDiskLibExt.h is committed");
    assert!(
        fresh == committed,
        "include/vixDiskLibExt.h is stale: run `VIXDISKLIB_BLESS_HEADER=1 cargo build` and commit it"
    );
}

#[test]
fn extension_header_holds_only_prefixed_names_and_vmware_header_none_of_them() {
    let ext = include_str!(concat!(env!("OUT_DIR"), "/vixDiskLibExt.h"));
    let vmware = include_str!(concat!(env!("OUT_DIR"), "/vixDiskLib.h"));
    assert!(ext.contains("VixDiskLibExt_Commit("));
    assert!(
        !vmware.contains("VixDiskLibExt_") && !vmware.contains("VIXDISKLIBEXT_"),
        "our additions leaked into VMware's header"
    );
    for line in ext.lines().filter(|l| l.starts_with("#define ")) {
        let name = line.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            name.starts_with("VIXDISKLIBEXT_") || name == "_VIXDISKLIBEXT_H_",
            "`{name}` in vixDiskLibExt.h lacks the VIXDISKLIBEXT_ prefix"
        );
    }
    for line in ext.lines().filter(|l| l.contains('(') && l.ends_with(");")) {
        assert!(
            line.contains(" VixDiskLibExt_"),
            "function without the VixDiskLibExt_ prefix: {line}"
        );
    }
}
