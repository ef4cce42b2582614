//! Labels: from file names, the rules they must follow, the class codec, and the accuracy of readings.

use std::path::Path;

/// Rules a label must follow; `None` means anything goes (training infers them from the data).
#[derive(Clone, Debug, Default)]
pub struct LabelRules {
    pub alphabet: Option<String>,
    pub max_len: Option<usize>,
}

impl LabelRules {
    pub(super) fn check(&self, label: &str) -> Result<(), String> {
        if label.is_empty() {
            return Err("empty label (the file name before .png is the label)".into());
        }
        if let Some(c) = label.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("contains whitespace or a control character {c:?}"));
        }
        if let Some(alphabet) = &self.alphabet {
            if let Some(c) = label.chars().find(|c| !alphabet.contains(*c)) {
                return Err(format!("character {c:?} is not in the model's alphabet {alphabet:?}"));
            }
        }
        if let Some(max) = self.max_len {
            let n = label.chars().count();
            if n > max {
                return Err(format!("{n} characters, the model reads at most {max}"));
            }
        }
        Ok(())
    }
}

/// The label of `path`: its file name without `.png`. A suffix after `_` is allowed for duplicates
/// (`abc12_2.png` reads `abc12`).
pub fn label_of(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    match stem.split_once('_') {
        Some((label, _)) => label.to_string(),
        None => stem,
    }
}

/// Maps text to class indices and back: class 0 is the CTC blank, class `k ≥ 1` is `alphabet[k - 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Codec {
    chars: Vec<char>,
}

impl Codec {
    pub fn new(alphabet: &str) -> Self {
        Codec { chars: alphabet.chars().collect() }
    }
    pub fn alphabet(&self) -> String {
        self.chars.iter().collect()
    }
    /// Classes including the blank.
    pub fn classes(&self) -> usize {
        self.chars.len() + 1
    }
    /// Class indices of `text`, or the first character outside the alphabet.
    pub fn encode(&self, text: &str) -> Result<Vec<i64>, char> {
        text.chars().map(|c| self.chars.iter().position(|&a| a == c).map(|k| k as i64 + 1).ok_or(c)).collect()
    }
    /// Greedy CTC decoding of a best path with core-infer's collapse (repeats merged, blanks dropped), keeping
    /// the first `max_len` characters, as the seed's decoder and core-infer do.
    pub fn decode_path(&self, path: &[i64], max_len: usize) -> String {
        let mut classes = Vec::new();
        core_infer::ctc::collapse(path.iter().map(|&k| usize::try_from(k).unwrap_or(0)), |k| classes.push(k));
        classes.iter().take(max_len).filter_map(|&k| self.chars.get(k - 1)).collect()
    }
}

/// Levenshtein distance between two strings, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// Sequence accuracy and character error rate of predictions against labels.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Accuracy {
    /// Fraction of images read exactly right.
    pub sequence: f64,
    /// Edit distance over label characters.
    pub cer: f64,
}

pub fn accuracy<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Accuracy {
    let (mut n, mut right, mut edits, mut chars) = (0usize, 0usize, 0usize, 0usize);
    for (truth, pred) in pairs {
        n += 1;
        right += usize::from(truth == pred);
        edits += edit_distance(truth, pred);
        chars += truth.chars().count();
    }
    Accuracy { sequence: right as f64 / n.max(1) as f64, cer: edits as f64 / chars.max(1) as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_round_trip_and_ctc_collapse() {
        let codec = Codec::new("abc");
        assert_eq!(codec.classes(), 4);
        assert_eq!(codec.encode("cab"), Ok(vec![3, 1, 2]));
        assert_eq!(codec.encode("cAb"), Err('A'));
        // repeats collapse, a blank separates real doubles, blanks vanish
        assert_eq!(codec.decode_path(&[0, 1, 1, 0, 1, 2, 2, 0, 3, 0], 9), "aabc");
        assert_eq!(codec.decode_path(&[0, 1, 1, 0, 1, 2, 2, 0, 3, 0], 2), "aa");
        assert_eq!(codec.decode_path(&[0, 0, 0], 9), "");
    }

    #[test]
    fn edit_distance_and_accuracy() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        let acc = accuracy([("abcd", "abcd"), ("abcd", "abd")]);
        assert_eq!(acc.sequence, 0.5);
        assert_eq!(acc.cer, 1.0 / 8.0);
    }

    #[test]
    fn labels_from_file_names_and_rules() {
        assert_eq!(label_of(Path::new("x/2b827.png")), "2b827");
        assert_eq!(label_of(Path::new("x/2b827_3.png")), "2b827");
        let rules = LabelRules { alphabet: Some("abc".into()), max_len: Some(3) };
        assert!(rules.check("abc").is_ok());
        assert!(rules.check("abca").unwrap_err().contains("at most 3"));
        assert!(rules.check("abd").unwrap_err().contains("'d'"));
        assert!(rules.check("").is_err());
    }
}
