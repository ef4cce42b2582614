//! The output the firmware must print (minus `time:` lines), computed on the host with core-infer for the
//! same model and images: `firmware-example/expected.txt`. `tools/firmware.sh test` diffs the QEMU run
//! against it, so the device's int8 outputs are checked bit for bit (a fingerprint of every raw score).
//!
//! Re-record after changing the shipped model on purpose:
//! `RECORD_GOLDEN=1 cargo test --release -p equivalence-tests --test firmware_expected`

use captcha_synth::fixtures::{fingerprint, DRAW_COUNT, DRAW_SEED, TEST_IMAGES, TEST_SEED};
use equivalence_tests::workspace;

fn expected() -> String {
    let bytes = std::fs::read(workspace().join("models/synthetic/model-int8.crnn")).unwrap();
    let model = core_infer::Model::parse(&bytes).unwrap();
    let mut scratch = vec![0u8; model.scratch_bytes()];
    let a = *model.arch();
    let mut out = format!(
        "model: {} bytes, {}x{} input, {} classes, scratch {} bytes\n",
        bytes.len(),
        a.width,
        a.height,
        a.classes,
        model.scratch_bytes()
    );
    let mut pixels = vec![0u8; usize::from(a.width) * usize::from(a.height)];
    let mut read = |seed: u64, i: u64, pixels: &mut [u8]| {
        let synth = captcha_synth::Synth::new(captcha_synth::Config::default(), seed).unwrap();
        let label = synth.draw(i, pixels).unwrap();
        let scores = model.run(pixels, &mut scratch).unwrap();
        let text = model.decode(&scores);
        (label, text.as_str().to_string(), fingerprint(scores.raw_i8().unwrap()))
    };
    for i in 0..TEST_IMAGES {
        let (label, text, fp) = read(TEST_SEED, i, &mut pixels);
        out += &format!("test {i}: label {label} read {text} scores {fp:08x}\n");
        if i == 0 {
            out += "wrote device-view.pgm (200x64): the first test image and what was read\n";
        }
    }
    let mut right = 0;
    for i in 0..DRAW_COUNT {
        let (label, text, fp) = read(DRAW_SEED, i, &mut pixels);
        right += usize::from(label.as_str() == text);
        out += &format!("drawn {i}: label {label} read {text} scores {fp:08x}\n");
    }
    out += &format!("drawn accuracy: {right}/{DRAW_COUNT}\n");
    out
}

#[test]
fn firmware_expected_output_is_current() {
    let path = workspace().join("firmware-example/expected.txt");
    let now = expected();
    if std::env::var_os("RECORD_GOLDEN").is_some() {
        std::fs::write(&path, &now).unwrap();
        eprintln!("recorded {}", path.display());
    }
    let recorded = std::fs::read_to_string(&path).expect("firmware-example/expected.txt (see module docs)");
    assert_eq!(now, recorded, "the host's int8 results changed; re-record (module docs)");
}
