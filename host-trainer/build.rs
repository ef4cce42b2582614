// Puts libtorch's `lib/` folder on the binary's rpath, so `cargo run` works without LD_LIBRARY_PATH.
// `LIBTORCH` comes from `.cargo/config.toml`, written by `tools/setup.sh`.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}/lib");
    }
}
