//! The shipped int8 models (written by the host trainer's quantizer) hold exactly the tensors of the one
//! schema, `core_infer::format::names`: the same names, dtypes, shapes and order, nothing else.

use core_infer::format::{names, ModelFile};

#[test]
fn shipped_models_hold_exactly_the_schema() {
    for dir in ["synthetic", "captcha_images_v2"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models").join(dir).join("model-int8.crnn");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = ModelFile::parse(&bytes).unwrap();
        let specs: Vec<_> = names::tensors(file.precision, &file.arch).collect();
        let got: Vec<_> = file
            .tensors()
            .map(|t| (String::from_utf8_lossy(t.name).into_owned(), t.dtype, t.shape().to_vec()))
            .collect();
        let want: Vec<_> = specs.iter().map(|s| (s.name(), s.dtype, s.shape().to_vec())).collect();
        assert_eq!(got, want, "{}", path.display());
    }
}
