//! Generates the C header from `src/lib.rs` with cbindgen and checks it against the checked-in
//! `include/core_infer.h`: a stale header fails the build (so CI fails). After changing the API, write
//! the new one with `CRNN_CAPI_WRITE_HEADER=1 cargo build` (tools/capi.sh header) and commit it.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    println!("cargo:rerun-if-changed=src/lib.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=include/core_infer.h");
    println!("cargo:rerun-if-env-changed=CRNN_CAPI_WRITE_HEADER");
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::generate_with_config(&dir, config).expect("cbindgen could not read src/lib.rs");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let header = dir.join("include/core_infer.h");
    let current = std::fs::read(&header).unwrap_or_default();
    if current == generated {
        return;
    }
    if std::env::var_os("CRNN_CAPI_WRITE_HEADER").is_some() {
        std::fs::write(&header, &generated).expect("include/core_infer.h");
        println!("cargo:warning=wrote {}", header.display());
    } else {
        panic!(
            "{} is not what src/lib.rs declares: regenerate it with `bash tools/capi.sh header` and commit it",
            header.display()
        );
    }
}
