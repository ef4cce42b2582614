//! The public entry point: a parsed, validated model that recognizes images.

use crate::beam::{self, Reading};
#[cfg(feature = "f32")]
use crate::f32::F32;
use crate::format::{ModelFile, Precision};
use crate::int8::{scores_scale, I8};
use crate::net::{forward, Layout, Net};
use crate::probe::{Probe, Stage};
use crate::{ctc, Arch, Error, Input, Text};

// No heap to box the larger variant into; a program holds one Model, so the size is paid once.
#[allow(clippy::large_enum_variant)]
enum Weights<'a> {
    #[cfg(feature = "f32")]
    F32(Net<'a, F32>),
    /// With dense2's output scale and zero point, to dequantize scores.
    I8(Net<'a, I8>, f32, i32),
}

/// A model borrowed from its file bytes: parsed and checked once, then used without copying.
pub struct Model<'a> {
    arch: Arch,
    input: Input,
    alphabet: &'a str,
    precision: Precision,
    layout: Layout,
    weights: Weights<'a>,
}

/// Per-step class scores of one image (`steps × classes`), living in the scratch buffer.
#[derive(Clone, Copy, Debug)]
pub enum Scores<'s> {
    /// Logits of an f32 model.
    F32 { data: &'s [f32], classes: usize },
    /// Quantized scores of an int8 model: `real = scale · (q − zp)`.
    I8 { data: &'s [i8], classes: usize, scale: f32, zp: i32 },
}

impl<'s> Scores<'s> {
    pub fn classes(&self) -> usize {
        match self {
            Scores::F32 { classes, .. } | Scores::I8 { classes, .. } => *classes,
        }
    }
    pub fn steps(&self) -> usize {
        match self {
            Scores::F32 { data, classes } => data.len() / classes.max(&1),
            Scores::I8 { data, classes, .. } => data.len() / classes.max(&1),
        }
    }
    /// The score of class `k` at step `t` as a real number (int8 scores dequantized); 0 outside the range.
    pub fn get(&self, t: usize, k: usize) -> f32 {
        match self {
            Scores::F32 { data, classes } => data.get(t * classes + k).copied().unwrap_or(0.0),
            Scores::I8 { data, classes, scale, zp } => {
                data.get(t * classes + k).map_or(0.0, |&q| scale * (i32::from(q) - zp) as f32)
            }
        }
    }
    /// The raw int8 scores of an int8 model.
    pub fn raw_i8(&self) -> Option<&'s [i8]> {
        match *self {
            Scores::I8 { data, .. } => Some(data),
            Scores::F32 { .. } => None,
        }
    }
    /// The best class of every step (the first one on ties), in time order.
    pub fn best_path(&self) -> impl Iterator<Item = usize> + 's {
        let (f, q, classes) = match *self {
            Scores::F32 { data, classes } => (data, &[][..], classes),
            Scores::I8 { data, classes, .. } => (&[][..], data, classes),
        };
        f.chunks_exact(classes.max(1)).map(argmax).chain(q.chunks_exact(classes.max(1)).map(argmax))
    }
}

fn argmax<A: PartialOrd + Copy>(row: &[A]) -> usize {
    let mut best = 0;
    for (k, v) in row.iter().enumerate() {
        if row.get(best).is_some_and(|b| v > b) {
            best = k;
        }
    }
    best
}

impl<'a> Model<'a> {
    /// Parses and validates model bytes (magic, version, length, checksum, every tensor's shape).
    // Not inlined: the parsed tensor table (a few KB) then lives only in this call's frame, not for good
    // in the caller's (on a microcontroller, in the stack that inference needs).
    #[inline(never)]
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let file = ModelFile::parse(bytes)?;
        let layout = Layout::new(&file.arch)?;
        if file.input == Input::Ink && !cfg!(feature = "colour") {
            return Err(Error::InputNotBuilt);
        }
        if file.alphabet.chars().count() + 1 != usize::from(file.arch.classes) {
            return Err(Error::BadAlphabet);
        }
        let weights = match file.precision {
            #[cfg(feature = "f32")]
            Precision::F32 => Weights::F32(Net::<F32>::load(&file)?),
            #[cfg(not(feature = "f32"))]
            Precision::F32 => return Err(Error::PrecisionNotBuilt),
            Precision::Int8 => {
                let (scale, zp) = scores_scale(&file)?;
                Weights::I8(Net::<I8>::load(&file)?, scale, zp)
            }
        };
        let (arch, input, alphabet, precision) = (file.arch, file.input, file.alphabet, file.precision);
        Ok(Model { arch, input, alphabet, precision, layout, weights })
    }

    pub fn arch(&self) -> &Arch {
        &self.arch
    }
    /// The characters the model reads, in class order (class `k` is character `k - 1`).
    pub fn alphabet(&self) -> &'a str {
        self.alphabet
    }
    pub fn precision(&self) -> Precision {
        self.precision
    }
    /// What [`Model::run`] does to an image before the network (the conversion it was trained with).
    pub fn input(&self) -> Input {
        self.input
    }

    /// Bytes of scratch [`Model::run`] and [`Model::recognize`] need (any alignment): the network's, and
    /// for a colour model ([`Input::Ink`]) the grey image it reads.
    pub fn scratch_bytes(&self) -> usize {
        let network = match self.weights {
            #[cfg(feature = "f32")]
            Weights::F32(_) => self.layout.scratch_bytes::<F32>(),
            Weights::I8(..) => self.layout.scratch_bytes::<I8>(),
        };
        network + self.grey_bytes()
    }

    /// Bytes of the images [`Model::run`] takes: height × width × [`Input::channels`].
    pub fn image_bytes(&self) -> usize {
        usize::from(self.arch.height) * usize::from(self.arch.width) * self.input.channels()
    }

    /// Scratch bytes the input conversion takes for its own image (a colour model's grey ink image).
    fn grey_bytes(&self) -> usize {
        match self.input {
            Input::Ink => usize::from(self.arch.height) * usize::from(self.arch.width),
            Input::Plain | Input::Stretch => 0,
        }
    }

    /// Runs the network on `pixels` (u8, height × width, row-major, as they are: grey, or for a colour
    /// model ([`Input::Ink`]) RGB, 3 bytes per pixel; see [`Model::image_bytes`]; the model's [`Input`]
    /// conversion happens here) and returns the per-step class scores, which live in `scratch`.
    pub fn run<'s>(&self, pixels: &[u8], scratch: &'s mut [u8]) -> Result<Scores<'s>, Error> {
        self.run_probed(pixels, scratch, &mut ())
    }

    /// [`Model::run`], telling `probe` where each [`Stage`] of the network ends (see [`crate::probe`]):
    /// how firmware profiles an inference layer by layer.
    pub fn run_probed<'s, P: Probe>(
        &self,
        pixels: &[u8],
        scratch: &'s mut [u8],
        probe: &mut P,
    ) -> Result<Scores<'s>, Error> {
        let classes = usize::from(self.arch.classes);
        if pixels.len() != self.image_bytes() {
            return Err(Error::ImageSize);
        }
        // A colour model's ink image goes to the front of the scratch; the network takes the rest.
        let (pixels, scratch): (&[u8], &'s mut [u8]) = match self.input {
            #[cfg(feature = "colour")]
            Input::Ink => {
                let (grey, rest) = scratch.split_at_mut_checked(self.grey_bytes()).ok_or(Error::ScratchTooSmall)?;
                let (h, w) = (usize::from(self.arch.height), usize::from(self.arch.width));
                crate::input::ink(pixels, h, w, grey)?;
                (grey, rest)
            }
            #[cfg(not(feature = "colour"))]
            Input::Ink => return Err(Error::InputNotBuilt),
            Input::Plain | Input::Stretch => (pixels, scratch),
        };
        let table = &self.input.table(pixels);
        probe.done(Stage::Input);
        Ok(match &self.weights {
            #[cfg(feature = "f32")]
            Weights::F32(net) => {
                Scores::F32 { data: forward(net, &self.layout, pixels, table, scratch, probe)?, classes }
            }
            Weights::I8(net, scale, zp) => Scores::I8 {
                data: forward(net, &self.layout, pixels, table, scratch, probe)?,
                classes,
                scale: *scale,
                zp: *zp,
            },
        })
    }

    /// Reads the text in `pixels` with greedy CTC decoding.
    pub fn recognize(&self, pixels: &[u8], scratch: &mut [u8]) -> Result<Text, Error> {
        let scores = self.run(pixels, scratch)?;
        Ok(self.decode(&scores))
    }

    /// Reads the text in `pixels` with greedy decoding, with its confidence ([`crate::beam::greedy`]).
    pub fn read(&self, pixels: &[u8], scratch: &mut [u8]) -> Result<Reading, Error> {
        let scores = self.run(pixels, scratch)?;
        Ok(beam::greedy(&scores, self.alphabet, usize::from(self.arch.max_label_len)))
    }

    /// Reads the text in `pixels` with CTC prefix beam search of width `W` (1..=
    /// [`beam::MAX_BEAM_WIDTH`]), with the text's probability ([`crate::beam::beam`]).
    pub fn read_beam<const W: usize>(&self, pixels: &[u8], scratch: &mut [u8]) -> Result<Reading, Error> {
        let scores = self.run(pixels, scratch)?;
        Ok(beam::beam::<W>(&scores, self.alphabet, usize::from(self.arch.max_label_len)))
    }

    /// Greedy CTC decoding of scores from [`Model::run`].
    pub fn decode(&self, scores: &Scores<'_>) -> Text {
        let mut classes = heapless::Vec::<usize, { crate::MAX_LABEL_LEN }>::new();
        ctc::collapse(scores.best_path(), |k| {
            let _ = classes.push(k); // full means max length reached; to_text caps there anyway
        });
        ctc::to_text(classes.into_iter(), self.alphabet, usize::from(self.arch.max_label_len))
    }
}
