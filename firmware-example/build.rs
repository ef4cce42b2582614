//! Puts the board's memory map (memory/*.x, as memory.x) on the linker path, picks the embedded model (`CRNN_MODEL`, default the shipped int8
//! model) and draws the embedded test images with the shared captcha generator.
use std::path::PathBuf;

use captcha_synth::fixtures::{TEST_IMAGES, TEST_SEED};

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    // One memory map per board: the mps2 boards of the M3, M4 and M7 share one; the M33's mps2-an505 puts
    // its memories elsewhere. (Not named memory.x in the package root: the linker would find that one
    // first, in its working directory.) Armv8-M also guards the stack differently (src/stack.rs).
    // The Cortex-M55 (the `mve` feature: Helium is the M55's) runs on mps3-an547, with yet another map;
    // RV32 on QEMU's virt machine.
    let target = std::env::var("TARGET").unwrap_or_default();
    let armv8m = target.starts_with("thumbv8m");
    let an547 = std::env::var_os("CARGO_FEATURE_MVE").is_some();
    let riscv = target.starts_with("riscv32");
    let map = if riscv {
        "memory/qemu-virt-rv32.x"
    } else if an547 {
        "memory/mps3-an547.x"
    } else if armv8m {
        "memory/mps2-an505.x"
    } else {
        "memory/mps2.x"
    };
    std::fs::copy(manifest.join(map), out.join("memory.x")).expect(map);
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={map}");
    println!("cargo::rustc-check-cfg=cfg(armv8m)");
    println!("cargo::rustc-check-cfg=cfg(an547)");
    if armv8m {
        println!("cargo:rustc-cfg=armv8m");
    }
    if an547 {
        println!("cargo:rustc-cfg=an547");
    }

    println!("cargo:rerun-if-env-changed=CRNN_MODEL");
    let model = std::env::var("CRNN_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../models/synthetic/model-int8.crnn"));
    println!("cargo:rerun-if-changed={}", model.display());
    std::fs::copy(&model, out.join("model.crnn")).unwrap_or_else(|e| panic!("{}: {e}", model.display()));

    let synth = captcha_synth::Synth::new(captcha_synth::Config::default(), TEST_SEED).expect("generator");
    let (w, h) = (usize::from(synth.config().width), usize::from(synth.config().height));
    let mut pixels = vec![0u8; w * h];
    let mut images = Vec::new();
    let mut labels = String::new();
    for i in 0..TEST_IMAGES {
        let label = synth.draw(i, &mut pixels).expect("draw");
        images.extend_from_slice(&pixels);
        labels.push_str(label.as_str());
        labels.push('\n');
    }
    std::fs::write(out.join("images.bin"), images).expect("images.bin");
    std::fs::write(out.join("labels.txt"), labels).expect("labels.txt");
}
