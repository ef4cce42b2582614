//! Writes the embedded test images of the shared fixtures for programs that cannot call the generator
//! (the C example and its host test): `images.bin` (the captchas' u8 pixels, one after another, each
//! width × height) and `labels.txt` (one label a line) into DIR.
//!
//!   cargo run --release -p captcha-synth --example fixtures -- DIR
use captcha_synth::fixtures::{TEST_IMAGES, TEST_SEED};
use captcha_synth::{Config, Synth};

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(std::path::PathBuf::from) else {
        eprintln!("usage: fixtures DIR   (writes DIR/images.bin and DIR/labels.txt)");
        std::process::exit(2);
    };
    let synth = match Synth::new(Config::default(), TEST_SEED) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: the generator refused its default configuration: {e:?}");
            std::process::exit(1);
        }
    };
    let (w, h) = (usize::from(synth.config().width), usize::from(synth.config().height));
    let (mut images, mut labels, mut pixels) = (Vec::new(), String::new(), vec![0u8; w * h]);
    for i in 0..TEST_IMAGES {
        match synth.draw(i, &mut pixels) {
            Ok(label) => labels += &format!("{label}\n"),
            Err(e) => {
                eprintln!("error: drawing captcha {i}: {e:?}");
                std::process::exit(1);
            }
        }
        images.extend_from_slice(&pixels);
    }
    let write = |name: &str, bytes: &[u8]| {
        if let Err(e) = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(name), bytes)) {
            eprintln!("error: {}: {e}", dir.join(name).display());
            std::process::exit(1);
        }
    };
    write("images.bin", &images);
    write("labels.txt", labels.as_bytes());
}
