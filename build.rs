//! Build script: compiles the C log shim, sets the shared object's SONAME and symbol versions,
//! and regenerates include/vixDiskLib.h with cbindgen (into OUT_DIR; the committed copy is
//! refreshed only when VIXDISKLIB_BLESS_HEADER=1, and a test compares the two).

use std::env;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets this"));
    println!("cargo:rerun-if-changed=src/ffi/log_shim.c");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=cbindgen-ext.toml");
    println!("cargo:rerun-if-changed=vixDiskLib.map");
    // cbindgen parses the whole crate (a pub const anywhere can reach the header).
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-env-changed=VIXDISKLIB_BLESS_HEADER");

    cc::Build::new()
        .file("src/ffi/log_shim.c")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .compile("vixdisklib_log_shim");

    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvixDiskLib.so.8");
    let map = root.join("vixDiskLib.map");
    if map.exists() {
        println!(
            "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
            map.display()
        );
    }

    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets this"));
    let bless = env::var_os("VIXDISKLIB_BLESS_HEADER").is_some();
    // VMware's API from the whole crate; our additions from src/ffi/ext.rs alone.
    let main = cbindgen::Builder::new().with_crate(&root).with_config(
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses"),
    );
    let ext = cbindgen::Builder::new()
        .with_src(root.join("src/ffi/ext.rs"))
        .with_config(
            cbindgen::Config::from_file(root.join("cbindgen-ext.toml"))
                .expect("cbindgen-ext.toml parses"),
        );
    for (builder, name) in [(main, "vixDiskLib.h"), (ext, "vixDiskLibExt.h")] {
        match builder.generate() {
            Ok(bindings) => {
                bindings.write_to_file(out_dir.join(name));
                let committed = root.join("include").join(name);
                if bless || !committed.exists() {
                    std::fs::copy(out_dir.join(name), &committed)
                        .unwrap_or_else(|e| panic!("write include/{name}: {e}"));
                }
            }
            Err(e) => println!("cargo:warning=cbindgen could not generate {name}: {e}"),
        }
    }
}
