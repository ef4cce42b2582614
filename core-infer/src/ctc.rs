//! Greedy CTC decoding: the best class per step, repeats collapsed, blanks (class 0) dropped.

use crate::MAX_LABEL_LEN;

/// Decoded text; room for [`MAX_LABEL_LEN`] characters of up to 4 UTF-8 bytes each.
pub type Text = heapless::String<{ MAX_LABEL_LEN * 4 }>;

/// Collapses a path of per-step classes into label classes (each `≥ 1`), calling `emit` for each.
/// `path` yields the best class of every step in time order.
///
/// ```
/// let mut out = vec![];
/// core_infer::ctc::collapse([0, 3, 3, 0, 3, 1, 1, 0].into_iter(), |k| out.push(k));
/// assert_eq!(out, [3, 3, 1]);
/// ```
pub fn collapse(path: impl Iterator<Item = usize>, mut emit: impl FnMut(usize)) {
    let mut prev = 0;
    for k in path {
        if k != 0 && k != prev {
            emit(k);
        }
        prev = k;
    }
}

/// Maps label classes to text with `alphabet` (class `k` is its character `k - 1`), keeping at most
/// `max_len` characters, as the seed's decoder does. Classes outside the alphabet are skipped.
pub fn to_text(classes: impl Iterator<Item = usize>, alphabet: &str, max_len: usize) -> Text {
    let mut text = Text::new();
    for k in classes.take(max_len.min(MAX_LABEL_LEN)) {
        if let Some(ch) = k.checked_sub(1).and_then(|i| alphabet.chars().nth(i)) {
            // Cannot overflow: MAX_LABEL_LEN characters of at most 4 bytes fit by construction.
            let _ = text.push(ch);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(path: &[usize], alphabet: &str, max: usize) -> Text {
        let mut ks = std::vec::Vec::new();
        collapse(path.iter().copied(), |k| ks.push(k));
        to_text(ks.into_iter(), alphabet, max)
    }

    #[test]
    fn repeats_collapse_unless_a_blank_separates_them() {
        assert_eq!(decode(&[1, 1, 2, 2, 2, 0, 2], "ab", 10), "abb");
        assert_eq!(decode(&[0, 0, 0], "ab", 10), "");
        assert_eq!(decode(&[], "ab", 10), "");
    }

    #[test]
    fn output_is_capped_and_multibyte_safe() {
        assert_eq!(decode(&[1, 0, 1, 0, 1], "é", 2), "éé");
        assert_eq!(decode(&[1, 9, 2], "ab", 5), "ab", "class 9 is outside the alphabet");
        let long: std::vec::Vec<usize> = (0..200).map(|i| 1 + i % 2).collect();
        assert_eq!(decode(&long, "€x", 1000).chars().count(), MAX_LABEL_LEN);
    }
}
