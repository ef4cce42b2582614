//! Model bytes under attack: every truncation of the shipped int8 model and bit flips across the header,
//! the tensor table and (at random) the payload are refused with an error or, where the checksum is
//! bypassed on purpose, still run without panicking.

fn shipped() -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/synthetic/model-int8.crnn");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses and, if that succeeds, runs one image: must return, never panic.
fn try_model(bytes: &[u8], image: &[u8]) -> Result<(), core_infer::Error> {
    let model = core_infer::Model::parse(bytes)?;
    let mut scratch = vec![0u8; model.scratch_bytes().min(1 << 20)];
    model.recognize(image, &mut scratch).map(|_| ())
}

/// Recomputes the CRC so that a flip reaches the parser's later checks instead of the checksum.
use fuzz_models::fix_checksum as fix_crc;

#[test]
fn every_truncation_is_refused() {
    let bytes = shipped();
    let image = vec![128u8; 200 * 50];
    for len in 0..bytes.len() {
        assert!(try_model(&bytes[..len], &image).is_err(), "truncated to {len} bytes but accepted");
    }
    eprintln!("{} truncations refused", bytes.len());
}

/// Where the tensor table ends, walked with the layout documented in `core_infer::format`.
fn table_end(bytes: &[u8]) -> usize {
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]));
    let (alphabet_len, tensors) = (u16_at(30), u16_at(32));
    let mut pos = core_infer::format::FIXED_HEADER_LEN + alphabet_len;
    for _ in 0..tensors {
        let name_len = usize::from(bytes[pos]);
        let rank = usize::from(bytes[pos + name_len + 2]);
        pos += 1 + name_len + 2 + 4 * rank + 8;
    }
    pos
}

#[test]
fn bit_flips_are_caught_or_harmless() {
    let bytes = shipped();
    let image: Vec<u8> = (0..200 * 50).map(|i| (i * 7 % 256) as u8).collect();
    // Flip every bit of the header, the alphabet and the tensor table, and 300 random payload bits.
    let table_end = table_end(&bytes);
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let header: Vec<usize> = (0..table_end.min(bytes.len())).collect();
    let payload: Vec<usize> = (0..300).map(|_| table_end + (next() as usize) % (bytes.len() - 4 - table_end)).collect();
    let (mut caught, mut fixed_ok, mut fixed_err) = (0, 0, 0);
    for (pos, bit) in
        header.iter().flat_map(|&p| (0..8).map(move |b| (p, b))).chain(payload.iter().map(|&p| (p, p % 8)))
    {
        let mut b = bytes.clone();
        b[pos] ^= 1 << bit;
        // As is: the checksum (or the length/magic checks before it) must catch it.
        assert!(core_infer::Model::parse(&b).is_err(), "flip at {pos}.{bit} accepted");
        caught += 1;
        // With the checksum recomputed: any error or any result, but no panic and no hang.
        fix_crc(&mut b);
        match try_model(&b, &image) {
            Ok(()) => fixed_ok += 1,
            Err(_) => fixed_err += 1,
        }
    }
    eprintln!(
        "{caught} flips ({table_end} header and table bytes, every bit; 300 payload bits) caught by the checks; \
         with the CRC recomputed: {fixed_err} refused, {fixed_ok} ran"
    );
}
