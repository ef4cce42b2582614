//! Decoding with a confidence: greedy (the best path) and CTC prefix beam search, both from the class
//! scores of [`crate::Model::run`] (f32 logits, or int8 scores dequantized), softmaxed per step.
//!
//! - [`greedy`]: the best class per step, collapsed ([`crate::ctc`]); each character's probability is the
//!   highest `p(t, k)` over the steps the path spends on it, and the confidence is the least of them: the
//!   reading is as sure as its least sure character (for an empty reading, the probability of the
//!   all-blank path). The whole path's probability `Π_t max_k p(t, k)` would be a poor confidence: steps
//!   between two characters split their mass between blank and character, so a clear reading of five
//!   characters gets 0.3 where its least sure character has 0.9.
//! - [`beam`]: the prefix beam search of Graves and of Hannun et al.: the `W` most probable prefixes,
//!   each with its probability of ending in a blank and in its last character, summed over every
//!   alignment. Its confidence is the probability of the text it returns, `Σ` over all alignments of
//!   it: with `W` at least the number of distinct prefixes the model can read, the exact most probable
//!   labelling (the brute-force sum the tests compare it with). Width 1 reads what greedy reads when the
//!   best path has probability above 1/2 (not always below: one beam compares a prefix's summed paths).
//!
//! No heap: beam search keeps two arrays of `W` prefixes on the stack, `2 · W ·`
//! [`core::mem::size_of::<Prefix>()`] bytes (about 7.5 KB at the largest width, [`MAX_BEAM_WIDTH`]; 0.9 KB
//! at 8), and one step's log-probabilities (`4 · MAX_CLASSES` bytes). Cost per step: `W · classes`
//! candidates, each a log-add, and `W²` prefix comparisons.

use crate::ctc::{self, Text};
use crate::model::Scores;
use crate::{MAX_CLASSES, MAX_LABEL_LEN};

/// Widest beam [`beam`] accepts (a compile-time check on `W`).
pub const MAX_BEAM_WIDTH: usize = 64;

/// A decoded text with how sure the model is of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub text: Text,
    /// A probability in [0, 1]: of the least sure character (greedy) or of the text, all alignments summed
    /// (beam).
    pub confidence: f32,
    /// Each character's probability on the best path (greedy); empty for beam search.
    pub chars: heapless::Vec<f32, MAX_LABEL_LEN>,
}

/// `e^logp` as a probability: in [0, 1], and 0 where the scores were not numbers (a NaN from a broken
/// f32 model reads as no confidence at all).
fn probability(logp: f32) -> f32 {
    let p = libm::expf(logp);
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// `ln(e^a + e^b)` without overflow; `-∞` is the log of 0.
fn log_add(a: f32, b: f32) -> f32 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f32::NEG_INFINITY {
        return hi;
    }
    hi + libm::log1pf(libm::expf(lo - hi))
}

/// The log-softmax of step `t` into `out[..classes]`.
fn log_softmax(scores: &Scores<'_>, t: usize, out: &mut [f32; MAX_CLASSES]) {
    let classes = scores.classes().min(MAX_CLASSES);
    let row = out.get_mut(..classes).unwrap_or(&mut []);
    for (k, o) in row.iter_mut().enumerate() {
        *o = scores.get(t, k);
    }
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&v| libm::expf(v - max)).sum();
    let log_z = max + libm::logf(sum);
    for o in row {
        *o -= log_z;
    }
}

/// Greedy decoding with each character's probability and the least of them as the confidence.
pub fn greedy(scores: &Scores<'_>, alphabet: &str, max_len: usize) -> Reading {
    let mut logp = [0f32; MAX_CLASSES];
    let mut path_logp = 0f32;
    let mut classes = heapless::Vec::<usize, MAX_LABEL_LEN>::new();
    let mut chars = heapless::Vec::<f32, MAX_LABEL_LEN>::new();
    let mut prev = 0;
    for (t, best) in scores.best_path().enumerate() {
        log_softmax(scores, t, &mut logp);
        let lp = logp.get(best).copied().unwrap_or(0.0);
        path_logp += lp;
        let p = probability(lp);
        if best != 0 && best != prev {
            // A full vector means the longest text is reached: the rest is cut as ctc::to_text cuts it.
            let _ = classes.push(best);
            let _ = chars.push(p);
        } else if best != 0 {
            if let Some(c) = chars.last_mut() {
                *c = c.max(p);
            }
        }
        prev = best;
    }
    let text = ctc::to_text(classes.iter().copied(), alphabet, max_len);
    chars.truncate(text.chars().count());
    let confidence = if chars.is_empty() { probability(path_logp) } else { chars.iter().copied().fold(1.0, f32::min) };
    Reading { text, confidence, chars }
}

/// One prefix of the beam: its classes, and the log-probabilities of the steps so far ending in a
/// blank (`blank`) or in its last class (`last`), and of either (`total`, kept when it is offered).
#[derive(Clone, Copy, Debug)]
pub struct Prefix {
    classes: [u8; MAX_LABEL_LEN],
    len: u8,
    blank: f32,
    last: f32,
    total: f32,
}

impl Prefix {
    const EMPTY: Prefix = Prefix {
        classes: [0; MAX_LABEL_LEN],
        len: 0,
        blank: f32::NEG_INFINITY,
        last: f32::NEG_INFINITY,
        total: f32::NEG_INFINITY,
    };

    fn classes(&self) -> &[u8] {
        self.classes.get(..usize::from(self.len)).unwrap_or(&[])
    }
    fn total(&self) -> f32 {
        self.total
    }
    fn last_class(&self) -> Option<u8> {
        self.classes().last().copied()
    }
    /// This prefix with class `k` appended (`None` when full).
    fn extended(&self, k: u8) -> Option<Prefix> {
        let mut p = *self;
        *p.classes.get_mut(usize::from(p.len))? = k;
        p.len += 1;
        p.blank = f32::NEG_INFINITY;
        p.last = f32::NEG_INFINITY;
        p.total = f32::NEG_INFINITY;
        Some(p)
    }
    /// Log-probability of reaching `self + k` from this prefix in one step whose log-probabilities are
    /// `logp`: a repeat of the last class needs a blank between.
    fn extend_logp(&self, k: u8, logp: &[f32; MAX_CLASSES]) -> f32 {
        let before = if self.last_class() == Some(k) { self.blank } else { self.total() };
        before + logp.get(usize::from(k)).copied().unwrap_or(f32::NEG_INFINITY)
    }
}

/// Keeps the `W` most probable of the prefixes offered (each offered once).
struct Best<const W: usize> {
    beams: [Prefix; W],
    len: usize,
    /// The least total kept, once all `W` slots are taken.
    worst: f32,
}

impl<const W: usize> Best<W> {
    fn new() -> Self {
        Best { beams: [Prefix::EMPTY; W], len: 0, worst: f32::NEG_INFINITY }
    }
    /// Whether a prefix of this total would be kept: the test before building one.
    fn takes(&self, total: f32) -> bool {
        total > f32::NEG_INFINITY && (self.len < W || total > self.worst)
    }
    /// Offers `p`, its total computed here from `blank` and `last`.
    fn offer(&mut self, mut p: Prefix) {
        p.total = log_add(p.blank, p.last);
        if !self.takes(p.total) {
            return;
        }
        if self.len < W {
            if let Some(slot) = self.beams.get_mut(self.len) {
                *slot = p;
                self.len += 1;
            }
        } else if let Some(w) = self.beams.iter_mut().min_by(|a, b| a.total.total_cmp(&b.total)) {
            *w = p; // the least probable makes way
        }
        if self.len == W {
            self.worst = self.beams.iter().map(|b| b.total).fold(f32::INFINITY, f32::min);
        }
    }
    fn live(&self) -> &[Prefix] {
        self.beams.get(..self.len).unwrap_or(&[])
    }
}

/// CTC prefix beam search of width `W` (1..=[`MAX_BEAM_WIDTH`]): the most probable text found and its
/// probability, all alignments summed. Texts are at most `max_len` characters.
pub fn beam<const W: usize>(scores: &Scores<'_>, alphabet: &str, max_len: usize) -> Reading {
    const { assert!(W >= 1 && W <= MAX_BEAM_WIDTH, "beam width must be 1..=MAX_BEAM_WIDTH") };
    let classes = scores.classes().min(MAX_CLASSES);
    let max_len = max_len.min(MAX_LABEL_LEN);
    let mut logp = [0f32; MAX_CLASSES];
    let mut beams = Best::<W>::new();
    beams.offer(Prefix { blank: 0.0, ..Prefix::EMPTY }); // the empty prefix, certain before any step
    for t in 0..scores.steps() {
        log_softmax(scores, t, &mut logp);
        let blank = logp.first().copied().unwrap_or(f32::NEG_INFINITY);
        let old = beams.live();
        let mut next = Best::<W>::new();
        for q in old {
            // q stays q: a blank after it, or its last class repeated (collapsed) ...
            let mut stay = Prefix { blank: q.total() + blank, last: f32::NEG_INFINITY, ..*q };
            if let Some(k) = q.last_class() {
                stay.last = q.last + logp.get(usize::from(k)).copied().unwrap_or(f32::NEG_INFINITY);
                // ... or q minus its last class, when that is a prefix of the beam too, extended by it.
                if let Some(parent) = old.iter().find(|p| p.len + 1 == q.len && q.classes().starts_with(p.classes())) {
                    stay.last = log_add(stay.last, parent.extend_logp(k, &logp));
                }
            }
            next.offer(stay);
        }
        for p in old.iter().filter(|p| usize::from(p.len) < max_len) {
            for k in 1..classes {
                let Ok(k) = u8::try_from(k) else { break };
                let lp = p.extend_logp(k, &logp);
                // Cheap test first: most extensions are too improbable to be kept.
                if !next.takes(lp) {
                    continue;
                }
                let Some(mut ext) = p.extended(k) else { break };
                // An extension that is already a prefix of the beam was summed into its stay above.
                if old.iter().any(|q| q.classes() == ext.classes()) {
                    continue;
                }
                ext.last = lp;
                next.offer(ext);
            }
        }
        beams = next;
    }
    let best = beams.live().iter().copied().max_by(|a, b| a.total().total_cmp(&b.total())).unwrap_or(Prefix::EMPTY);
    let text = ctc::to_text(best.classes().iter().map(|&k| usize::from(k)), alphabet, max_len);
    Reading { text, confidence: probability(best.total()), chars: heapless::Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn scores(data: &[f32], classes: usize) -> Scores<'_> {
        Scores::F32 { data, classes }
    }

    /// Logits whose softmax is exactly `probs` (rows of `classes`).
    fn logits(probs: &[f32]) -> Vec<f32> {
        probs.iter().map(|p| p.ln()).collect()
    }

    /// The definition: the probability of every labelling of at most `max_len` classes, each the sum over
    /// every path of `T` steps that collapses to it, by enumerating all `classes^T` paths.
    fn brute_force(probs: &[f32], classes: usize, max_len: usize) -> Vec<(Vec<usize>, f64)> {
        let steps = probs.len() / classes;
        let mut out: Vec<(Vec<usize>, f64)> = Vec::new();
        for code in 0..classes.pow(steps as u32) {
            let path: Vec<usize> = (0..steps).map(|t| code / classes.pow(t as u32) % classes).collect();
            let p: f64 = path.iter().enumerate().map(|(t, &k)| f64::from(probs[t * classes + k])).product();
            let mut label = Vec::new();
            ctc::collapse(path.into_iter(), |k| label.push(k));
            if label.len() > max_len {
                continue;
            }
            match out.iter_mut().find(|(l, _)| *l == label) {
                Some((_, q)) => *q += p,
                None => out.push((label, p)),
            }
        }
        out
    }

    #[test]
    fn beam_search_finds_the_labelling_the_best_path_misses() {
        // Two steps, classes blank/a: the best path is blank-blank (0.36, reads ""), but "a" has
        // 0.6·0.4 + 0.4·0.6 + 0.4·0.4 = 0.64 over its three paths.
        let probs = [0.6, 0.4, 0.6, 0.4];
        let l = logits(&probs);
        let s = scores(&l, 2);
        let g = greedy(&s, "a", 5);
        assert_eq!((g.text.as_str(), (g.confidence - 0.36).abs() < 1e-6), ("", true), "the blank path's 0.6²");
        let b = beam::<4>(&s, "a", 5);
        assert_eq!(b.text, "a");
        assert!((b.confidence - 0.64).abs() < 1e-5, "{}", b.confidence);
    }

    #[test]
    fn greedy_confidence_and_character_probabilities_follow_the_path() {
        // blank, a, a, blank, b: reads "ab"; a's best step has 0.8, b's 0.7.
        let probs = [0.9, 0.05, 0.05, 0.2, 0.7, 0.1, 0.1, 0.8, 0.1, 0.6, 0.3, 0.1, 0.1, 0.2, 0.7];
        let l = logits(&probs);
        let g = greedy(&scores(&l, 3), "ab", 5);
        assert_eq!(g.text, "ab");
        assert!((g.confidence - 0.7).abs() < 1e-6, "{}", g.confidence);
        assert_eq!(g.chars.len(), 2);
        assert!((g.chars[0] - 0.8).abs() < 1e-6 && (g.chars[1] - 0.7).abs() < 1e-6, "{:?}", g.chars);
    }

    proptest! {
        /// On small alphabets and lengths, a beam wide enough for every prefix finds the labelling of
        /// highest total probability, and its confidence is that probability.
        #[test]
        fn wide_beam_equals_the_brute_force_sum(
            classes in 2usize..=3,
            steps in 1usize..=5,
            raw in prop::collection::vec(0.01f32..1.0, 15),
            max_len in 1usize..=5,
        ) {
            let mut probs = raw[..classes * steps].to_vec();
            for row in probs.chunks_mut(classes) {
                let sum: f32 = row.iter().sum();
                row.iter_mut().for_each(|p| *p /= sum);
            }
            let l = logits(&probs);
            let s = scores(&l, classes);
            let all = brute_force(&probs, classes, max_len);
            let best = all.iter().map(|(_, p)| *p).fold(0.0, f64::max);
            let b = beam::<64>(&s, "ab", max_len);
            let got: Vec<usize> = b.text.chars().map(|c| if c == 'a' { 1 } else { 2 }).collect();
            let p_got = all.iter().find(|(lab, _)| *lab == got).map_or(0.0, |(_, p)| *p);
            // Ties between labellings may go either way; the probability may not.
            prop_assert!((p_got - best).abs() < 1e-5, "beam read {:?} ({}), best is {}", got, p_got, best);
            prop_assert!((f64::from(b.confidence) - best).abs() < 1e-4, "confidence {} vs {}", b.confidence, best);
        }

        /// Width 1 reads what greedy reads whenever the best path has probability above 1/2: then, step by
        /// step, the candidate holding the best path's prefix has more than half of the kept prefix's mass,
        /// more than every other candidate together. (Below that, one beam may keep a prefix whose mass is
        /// spread over several paths, each less probable than the best one: TF's note that greedy is
        /// "a special case of beam search with beam_width=1" holds only so far.)
        #[test]
        fn width_one_equals_greedy_when_the_best_path_is_likely(
            classes in 2usize..=6,
            best in prop::collection::vec(0usize..6, 12),
            others in prop::collection::vec(0.01f32..1.0, 72),
            steps in 1usize..=12,
        ) {
            // Each step gives its chosen class (2^-1/T)·1.01 or more, so the path has over 1/2.
            let floor = 0.5f32.powf(1.0 / steps as f32) * 1.01;
            let mut probs = Vec::new();
            for t in 0..steps {
                let k = best[t] % classes;
                let row = &others[t * classes..(t + 1) * classes];
                let rest: f32 = row.iter().enumerate().filter(|&(j, _)| j != k).map(|(_, p)| p).sum();
                let share = 1.0 - floor.min(0.999);
                probs.extend((0..classes).map(|j| if j == k { 1.0 - share } else { share * row[j] / rest.max(1e-9) }));
            }
            let l = logits(&probs);
            let s = scores(&l, classes);
            let g = greedy(&s, "abcde", 48);
            prop_assert_eq!(beam::<1>(&s, "abcde", 48).text, g.text);
        }

        #[test]
        fn confidences_are_probabilities(
            classes in 2usize..=6,
            steps in 1usize..=12,
            raw in prop::collection::vec(-50f32..50.0, 72),
        ) {
            let l = &raw[..classes * steps];
            let s = scores(l, classes);
            let g = greedy(&s, "abcde", 48);
            let b = beam::<8>(&s, "abcde", 48);
            prop_assert!((0.0..=1.0).contains(&g.confidence) && (0.0..=1.0).contains(&b.confidence));
            prop_assert!(g.chars.iter().all(|p| (0.0..=1.0).contains(p)));
            // Greedy's confidence is its least sure character, or the blank path's probability.
            match g.chars.iter().copied().reduce(f32::min) {
                Some(least) => prop_assert_eq!(g.confidence, least),
                None => prop_assert!(g.text.is_empty()),
            }
        }
    }
}
