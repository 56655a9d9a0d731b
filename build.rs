//! Generates include/slicebox.h with cbindgen, writing it only when its
//! text changes so that builds do not dirty the tree needlessly.

use std::path::PathBuf;

fn main() {
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can parse the crate");
    let header = crate_dir.join("include/slicebox.h");
    let mut text = Vec::new();
    bindings.write(&mut text);
    if std::fs::read(&header).ok().as_deref() != Some(text.as_slice()) {
        std::fs::create_dir_all(header.parent().expect("header has a parent"))
            .expect("create include/");
        std::fs::write(&header, text).expect("write include/slicebox.h");
    }
}
