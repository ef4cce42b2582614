//! The validation split: the seed's fixed 90/10 split, its cross-validation folds, and seeded shuffles.

/// How many disjoint validation folds a `val_fraction` makes: 10 for the seed's 90/10 split.
pub fn folds(val_fraction: f64) -> usize {
    (1.0 / val_fraction).ceil().max(1.0) as usize
}

/// A fixed-seed split: `(train, validation)` index lists. The images are shuffled with `seed` and fold `k`
/// validates on the `k`-th block of `val_fraction` of them counted from the end; fold 0 is the seed's 90/10
/// split, and folds `0..folds(val_fraction)` together validate on every image exactly once
/// (cross-validation). `None` when `fold` is out of range.
pub fn split(len: usize, val_fraction: f64, seed: u64, fold: usize) -> Option<(Vec<usize>, Vec<usize>)> {
    if fold >= folds(val_fraction) {
        return None;
    }
    let mut idx: Vec<usize> = (0..len).collect();
    if len < 2 {
        return Some((idx, Vec::new()));
    }
    shuffle(&mut idx, seed);
    // The fold's block is [lo, hi) counted from the end: at least one image, and never all of them.
    let end = |k: usize| (len as f64 * val_fraction * k as f64).round() as usize;
    let lo = end(fold).min(len - 1);
    let hi = end(fold + 1).clamp(lo + 1, len);
    let hi = if lo == 0 { hi.min(len - 1) } else { hi };
    let val = idx.drain(len - hi..len - lo).collect();
    Some((idx, val))
}

/// Fisher-Yates with SplitMix64: reproducible everywhere, no extra dependency.
pub fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_fixed_and_disjoint() {
        let (t, v) = split(100, 0.1, 7, 0).unwrap();
        assert_eq!((t.len(), v.len()), (90, 10));
        assert_eq!(split(100, 0.1, 7, 0), Some((t.clone(), v.clone())));
        let mut all: Vec<usize> = t.into_iter().chain(v).collect();
        all.sort();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn folds_validate_every_image_once() {
        for (len, fraction) in [(936, 0.1), (100, 0.1), (7, 0.25), (2, 0.1)] {
            let n = folds(fraction);
            let mut seen = vec![0; len];
            for fold in 0..n {
                let (t, v) = split(len, fraction, 3, fold).unwrap();
                assert!(!t.is_empty() && !v.is_empty(), "{len} images, fold {fold}");
                let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
                all.sort();
                assert_eq!(all, (0..len).collect::<Vec<_>>());
                v.iter().for_each(|&i| seen[i] += 1);
            }
            // Every image validated once (tiny sets: the one image left for training repeats in a fold).
            if len >= n {
                assert_eq!(seen, vec![1; len], "{len} images in {n} folds");
            }
            assert_eq!(split(len, fraction, 3, n), None);
        }
        // Fold 0 is the 90/10 split: the last 94 of the shuffled 936, 93 or 94 in the others.
        let sizes: Vec<usize> = (0..10).map(|k| split(936, 0.1, 42, k).unwrap().1.len()).collect();
        assert_eq!(sizes, [94, 93, 94, 93, 94, 94, 93, 94, 93, 94]);
        let mut shuffled: Vec<usize> = (0..936).collect();
        shuffle(&mut shuffled, 42);
        assert_eq!(split(936, 0.1, 42, 0).unwrap().1, shuffled[842..]);
    }
}
