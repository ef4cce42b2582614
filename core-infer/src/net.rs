//! The CRNN forward pass, written once for every precision.
//!
//! A precision ([`Kernels`]) says what an activation is, how its inputs are laid out in a
//! [block](crate::block) and how conv, dense and an LSTM step's input and recurrent halves compute; this
//! module owns everything else: streaming the conv front-end (conv + pool fused) along the width, the
//! bidirectional sequencing, and where each buffer lives in the caller's scratch.
//!
//! The tensors it reads (names, dtypes, shapes and layouts, both precisions) are listed once, in
//! [`crate::format::names`].

use crate::block::{block_len, copy_groups, fill, load, put, zero_tail};
use crate::format::{names, Arch, ModelFile};
pub use crate::kernels::{KERNEL_ROWS, ROWS_AT_ONCE};
use crate::probe::{Probe, Stage};
use crate::scratch::{bytes_for, take};
use crate::Error;
use bytemuck::Pod;

/// One numeric precision: its activation type and its layer kernels. The forward pass is generic over it.
pub trait Kernels: Sized {
    /// What flows between layers: `f32`, or `i8` with a per-tensor scale and zero point.
    type Act: Pod + Default + PartialOrd;
    /// An input as the dot products read it from a [block](crate::block): `f32`, or `i16` for int8.
    type In: Pod + Default;
    /// LSTM cell state: `f32`, or `i16` fixed point.
    type Cell: Pod + Default;
    /// LSTM gate pre-activations: `f32`, or `i32` accumulators.
    type Gate: Pod + Default;
    /// A conv 3×3 or dense layer.
    type Linear<'a>: Mac<Act = Self::Act, In = Self::In>;
    type Lstm<'a>;

    /// Refuses architectures this precision cannot compute exactly (int8: dot products that could
    /// overflow i32); [`Net::load`] asks first.
    fn check(_arch: &Arch) -> Result<(), Error> {
        Ok(())
    }
    /// Loads and checks conv or dense `layer` ([`names::LINEAR`]): `(outputs, segments, segment_len)`
    /// as [`names::linear_sizes`] gives them.
    fn linear<'a>(
        file: &ModelFile<'a>,
        layer: &'static str,
        sizes: (usize, usize, usize),
        relu: bool,
    ) -> Result<Self::Linear<'a>, Error>;
    /// Loads and checks LSTM direction `prefix` ([`names::LSTMS`]) of `(inputs, hidden)` units.
    fn lstm<'a>(file: &ModelFile<'a>, prefix: &'static str, sizes: (usize, usize)) -> Result<Self::Lstm<'a>, Error>;
    /// A pixel as an input activation (the network sees `pixel / 255`).
    fn pixel(p: u8) -> Self::Act;
    /// Time steps whose LSTM input halves [`Kernels::lstm_input`] computes at once: at most
    /// [`LSTM_STEPS_SIZED`].
    const STEPS_AT_ONCE: usize = LSTM_STEPS_AT_ONCE;
    /// The input half of an LSTM layer for up to [`Kernels::STEPS_AT_ONCE`] time steps at once:
    /// `gates[s] = b + W_ih · xs[s]`, `gates` holding `4 × hidden` values per step. `block` has
    /// [`lstm_block_len`] slots.
    fn lstm_input(layer: &Self::Lstm<'_>, xs: &[&[Self::Act]], gates: &mut [Self::Gate], block: &mut [Self::In]);
    /// The recurrent half of one step: adds `W_hh · h` to `gates` (one step of [`Kernels::lstm_input`]'s
    /// output) and updates the state `(h, c)`.
    fn lstm_recur(
        layer: &Self::Lstm<'_>,
        gates: &mut [Self::Gate],
        h: &mut [Self::Act],
        c: &mut [Self::Cell],
        block: &mut [Self::In],
    );
}

/// Time steps whose LSTM input projections are computed together: each weight row is then read once
/// for all of them (the recurrent half cannot be batched: each step needs the previous state). Four with
/// the Arm DSP kernels, whose four-column pass takes 13 instructions per 16 multiply-adds against 8 per 8
/// for two (2 M instructions per inference less on the Cortex-M4, measured); two elsewhere (the x86-64
/// unsigned-byte kernels take one or two columns).
pub const LSTM_STEPS_AT_ONCE: usize = if cfg!(all(feature = "dsp", target_arch = "arm")) { 4 } else { 2 };

/// The steps the scratch is laid out for: the most any target batches, so that a model needs the same
/// scratch on every target.
pub const LSTM_STEPS_SIZED: usize = 4;

/// Block slots an LSTM layer uses: the inputs of [`LSTM_STEPS_SIZED`] steps, then the hidden state.
pub const fn lstm_block_len(n_in: usize, hidden: usize) -> usize {
    block_len(n_in, LSTM_STEPS_SIZED) + block_len(hidden, 1)
}

/// How one conv or dense layer multiplies and accumulates. Each precision implements it; the loops that
/// use it ([`conv_pool`], [`dense`]) are written once.
pub trait Mac {
    type Act: Copy;
    type In: Copy + Default;
    type Acc: Copy + PartialOrd;
    /// Where input `j` of a group of four goes in a [block](crate::block).
    const LANES: [usize; 4];
    /// Inputs per weight segment: `C_in` for a conv (one segment per 3×3 tap), `In` for a dense layer.
    fn segment_len(&self) -> usize;
    /// Outputs (channels or units); never zero for a loaded layer.
    fn outputs(&self) -> usize;
    /// An input activation as the kernel reads it (minus the input zero point, for int8).
    fn input(&self, x: Self::Act) -> Self::In;
    /// The accumulator of output `o`, holding its bias.
    fn init(&self, o: usize) -> Self::Acc;
    /// `acc[r][c] +=` the dot product of output `o + r`'s weights (all its segments, in order) with
    /// column `c` of `block` (`cols` ≤ 4 columns), for the `acc.len()` ≤ [`ROWS_AT_ONCE`] outputs from `o`.
    fn mac_rows(&self, o: usize, block: &[Self::In], cols: usize, acc: &mut [[Self::Acc; 4]]);
    /// [`Mac::mac_rows`] of a dense layer on its activations as they are (`xs`: the `cols` columns of
    /// `n_in` values one after the other), by a kernel of this precision on this target that needs no
    /// block, where there is one (Arm int8 with Helium). Returns whether it ran (by default it does not,
    /// and [`dense`] loads the block for `mac_rows`, its reference).
    fn dense_rows(&self, o: usize, xs: &[Self::Act], n_in: usize, cols: usize, acc: &mut [[Self::Acc; 4]]) -> bool {
        let _ = (o, xs, n_in, cols, acc);
        false
    }
    /// Output `o`'s activation from its accumulator (ReLU, requantization). Monotonic in `acc`, so
    /// max-pooling accumulators equals max-pooling activations.
    fn finish(&self, o: usize, acc: Self::Acc) -> Self::Act;
    /// A pooling window's outputs: `out[r] = finish(o + r, the largest of acc[r])`. A precision may do it
    /// in one tight loop (int8 does).
    fn finish_pooled(&self, o: usize, acc: &[[Self::Acc; 4]], out: &mut [Self::Act]) {
        for (r, (v, &[a, b, c, d])) in out.iter_mut().zip(acc).enumerate() {
            let ab = if b > a { b } else { a };
            let cd = if d > c { d } else { c };
            *v = self.finish(o + r, if cd > ab { cd } else { ab });
        }
    }
    /// Writes the kernel inputs of `x` as inputs `k0 ..` of column `col` of a `cols`-column block:
    /// [`put`] with [`Mac::input`], unless a precision has a faster way for the same values.
    fn gather(&self, block: &mut [Self::In], cols: usize, col: usize, k0: usize, x: &[Self::Act]) {
        put(block, cols, col, k0, x, Self::LANES, |a| self.input(a));
    }
    /// One pooling window of [`conv_pool`] from its gathered `block`: `out[o] = finish(o, largest of the
    /// window's four sums)` for every channel, by a fused kernel of this precision on this target where
    /// there is one (Arm int8 has it). Returns whether it ran (by default it does not, and the generic
    /// loops, its reference, run instead).
    fn pooled_window(&self, block: &[Self::In], out: &mut [Self::Act]) -> bool {
        let _ = (block, out);
        false
    }
    /// Copies kernel inputs already converted (`src`, a one-column block's whole groups) to inputs
    /// `k0 ..` of column `col`: [`copy_groups`], unless a precision has a faster way.
    fn copy(&self, block: &mut [Self::In], cols: usize, col: usize, k0: usize, src: &[Self::In]) {
        copy_groups(block, cols, col, k0, src);
    }
    /// [`conv_pool`] by a kernel of this precision for this layer on this CPU, where there is one
    /// (x86-64 int8 has two): the same arguments (but the block) and exactly the same results as the
    /// generic loops. Returns whether it ran (by default it does not).
    fn conv_pool_kernel(&self, cols: [Option<&[Self::Act]>; 4], out: &mut [Self::Act]) -> bool {
        let _ = (cols, out);
        false
    }
}

/// Block slots [`conv_pool`] needs for a layer with `cin` input channels: one 3×3×C_in patch per
/// position of a 2×2 pooling window.
pub const fn conv_block_len(cin: usize) -> usize {
    block_len(9 * cin, 4)
}

/// Block slots after [`conv_block_len`] in which [`conv_pool`] keeps a window's 16 input rows converted.
pub const fn conv_cache_len(cin: usize) -> usize {
    16 * cin
}

/// 3×3 'same' convolution followed by 2×2 max-pool, for one pooled column. `cols` are the input columns
/// x-1 ..= x+2 around the conv columns x and x+1 (`None` outside the image: padding), each
/// `rows_in × C_in`; `out` is `rows_out × C_out` with `2 · rows_out ≤ rows_in` (an odd last row is
/// dropped, as the pool would drop it). Weight segment `ky * 3 + kx` of output `o` multiplies input row
/// `y + ky - 1` of column `x + kx - 1`. The four patches of a pooling window are gathered once into
/// `block` ([`conv_block_len`]); each output channel is then one pass over its weights with four
/// accumulators ([`ROWS_AT_ONCE`] channels per pass), and only the largest is requantized.
pub fn conv_pool<M: Mac>(layer: &M, cols: [Option<&[M::Act]>; 4], block: &mut [M::In], out: &mut [M::Act]) {
    let (cin, cout) = (layer.segment_len(), layer.outputs().max(1));
    if layer.conv_pool_kernel(cols, out) {
        return;
    }
    let Some((block, rest)) = block.split_at_mut_checked(conv_block_len(cin)) else { return };
    // The window's 16 input rows (4 columns × 4 rows) as kernel inputs, each converted once and then
    // copied to the 2.25 patch places that use it on average, where the block has room for them.
    let mut cache = rest.get_mut(..conv_cache_len(cin)).filter(|_| cin > 1 && cin.is_multiple_of(4));
    zero_tail(block, 4, 9 * cin, M::LANES);
    // (made once: building a fresh array per window costs a copy of all of it)
    let mut acc = [[layer.init(0); 4]; ROWS_AT_ONCE];
    for (i, out_row) in out.chunks_exact_mut(cout).enumerate() {
        // Column j of the block is conv position (row 2i + j % 2, column x + j / 2).
        if cin == 1 {
            // One value per tap (conv1): the window's neighbourhood is read once, and the four patches
            // cut from it.
            // Tap t (row t / 3, column t % 3 around it) of position j (row j % 2, column j / 2 of the
            // window) is neighbourhood [j / 2 + t % 3][j % 2 + t / 3], and goes to its block slot
            // directly (constant slots once the loops are unrolled).
            let near = neighbourhood(layer, cols, i);
            if let Some(b) = block.get_mut(..conv_block_len(1)) {
                for j in 0..4 {
                    for t in 0..9 {
                        let at = ((t / 4) * 4 + j) * 4 + M::LANES.get(t % 4).copied().unwrap_or(0);
                        let v = near.get(j / 2 + t % 3).and_then(|c| c.get(j % 2 + t / 3));
                        if let (Some(d), Some(&v)) = (b.get_mut(at), v) {
                            *d = v;
                        }
                    }
                }
            }
        }
        if let Some(cache) = cache.as_deref_mut() {
            // rows[c · 4 + r] = input row 2i − 1 + r of column c (zero outside the image) ...
            for (n, row) in cache.chunks_exact_mut(cin).enumerate() {
                let src = (2 * i + n % 4)
                    .checked_sub(1)
                    .and_then(|iy| cols.get(n / 4).copied().flatten()?.get(iy * cin..(iy + 1) * cin));
                match src {
                    Some(src) => layer.gather(row, 1, 0, 0, src),
                    None => row.fill(M::In::default()),
                }
            }
            // ... and tap (ky, kx) of position j (row 2i + j % 2, column j / 2) is rows[(j / 2 + kx) · 4 + j % 2 + ky].
            for j in 0..4 {
                for seg in 0..9 {
                    let n = (j / 2 + seg % 3) * 4 + j % 2 + seg / 3;
                    let row = cache.get(n * cin..(n + 1) * cin).unwrap_or(&[]);
                    layer.copy(block, 4, j, seg * cin, row);
                }
            }
        }
        if cin > 1 && cache.is_none() {
            gather_patches(layer, cols, i, block);
        }
        if !layer.pooled_window(block, out_row) {
            pool_window(layer, block, &mut acc, out_row);
        }
    }
}

/// One pooling window's outputs from its gathered `block` through the kernel passes and
/// [`Mac::finish_pooled`] ([`ROWS_AT_ONCE`] channels at a time), where the precision has no fused
/// [`Mac::pooled_window`] for it. `acc` is the caller's, made once.
#[cfg_attr(all(feature = "dsp", target_arch = "arm"), inline(never))] // (there the rare path: flash)
fn pool_window<M: Mac>(layer: &M, block: &[M::In], acc: &mut [[M::Acc; 4]; ROWS_AT_ONCE], out_row: &mut [M::Act]) {
    for (q, outs) in out_row.chunks_mut(ROWS_AT_ONCE).enumerate() {
        let o = q * ROWS_AT_ONCE;
        let Some(acc) = acc.get_mut(..outs.len()) else { return };
        for (r, a) in (o..).zip(acc.iter_mut()) {
            *a = [layer.init(r); 4];
        }
        layer.mac_rows(o, block, 4, acc);
        layer.finish_pooled(o, acc, outs);
    }
}

/// The four patches of pooling window `i` gathered straight from the input columns (channel counts
/// that are not a multiple of 4, where [`conv_pool`] keeps no converted rows). Not inlined: it is the
/// rare path.
#[inline(never)]
fn gather_patches<M: Mac>(layer: &M, cols: [Option<&[M::Act]>; 4], i: usize, block: &mut [M::In]) {
    let cin = layer.segment_len();
    // (a count the compiler cannot see: the 36 patch pieces stay a loop, not 36 copies of its body)
    for piece in 0..core::hint::black_box(36) {
        let (j, seg) = (piece / 9, piece % 9);
        let (y, dx) = (2 * i + j % 2, j / 2);
        {
            let (ky, kx) = (seg / 3, seg % 3);
            let src = (y + ky).checked_sub(1).and_then(|iy| {
                cols.get(dx + kx).copied().flatten().and_then(|col| col.get(iy * cin..(iy + 1) * cin))
            });
            match src {
                Some(src) => layer.gather(block, 4, j, seg * cin, src),
                None => fill(block, 4, j, seg * cin, cin, M::LANES, M::In::default()),
            }
        }
    }
}

/// The 4×4 neighbourhood of pooling window `i` of a one-input-channel conv, `[column][row]`: rows
/// 2i−1 ..= 2i+2 of the four input columns of [`conv_pool`], as kernel inputs, zero outside the image.
pub fn neighbourhood<M: Mac>(layer: &M, cols: [Option<&[M::Act]>; 4], i: usize) -> [[M::In; 4]; 4] {
    let mut near = [[M::In::default(); 4]; 4];
    for (near, col) in near.iter_mut().zip(cols) {
        // inside the image the four rows at once, else one by one (zero outside)
        if let Some(rows) = col.and_then(|c| c.get((2 * i).checked_sub(1)?..2 * i + 3)) {
            for (v, &a) in near.iter_mut().zip(rows) {
                *v = layer.input(a);
            }
            continue;
        }
        for (r, v) in near.iter_mut().enumerate() {
            if let Some(&a) = (2 * i + r).checked_sub(1).and_then(|y| col?.get(y)) {
                *v = layer.input(a);
            }
        }
    }
    near
}

/// The four 3×3 patches of pooling window `i` of a one-input-channel conv, cut from its [`neighbourhood`]:
/// patch `j` is conv position (row 2i + j % 2, column x + j / 2), tap `ky · 3 + kx` its input (row
/// `ky − 1`, column `kx − 1` around it). The generic path and the x86-64 conv1 kernels read them.
pub fn conv1_patches<M: Mac>(layer: &M, cols: [Option<&[M::Act]>; 4], i: usize) -> [[M::In; 9]; 4] {
    let near = neighbourhood(layer, cols, i);
    core::array::from_fn(|j| {
        let (dy, dx) = (j % 2, j / 2);
        core::array::from_fn(|t| near.get(dx + t % 3).and_then(|c| c.get(dy + t / 3)).copied().unwrap_or_default())
    })
}

/// Time steps a dense layer computes together (columns of one block): each weight row is then read once
/// for all of them.
pub const DENSE_STEPS: usize = 4;

/// `out_c = finish(W x_c + b)` for a dense layer (one weight segment per output) on the columns `x_c`,
/// `n_in` inputs each, one after the other in `xs` (at most [`DENSE_STEPS`] of them); `out` holds
/// the outputs of each column one after the other. `block` holds at least `block_len(n_in, columns)`
/// slots.
pub fn dense<M: Mac>(layer: &M, xs: &[M::Act], n_in: usize, block: &mut [M::In], out: &mut [M::Act]) {
    let outputs = layer.outputs();
    let cols = (xs.len() / n_in.max(1)).min(DENSE_STEPS);
    let Some(block) = block.get_mut(..block_len(n_in, cols)) else { return };
    let mut columns: [&[M::Act]; DENSE_STEPS] = [&[]; DENSE_STEPS];
    for (c, x) in columns.iter_mut().zip(xs.chunks_exact(n_in.max(1))) {
        *c = x;
    }
    let xs = xs.get(..cols * n_in).unwrap_or(&[]);
    let mut loaded = false; // (the block is loaded only if a pass needs it)
    let mut acc = [[layer.init(0); 4]; ROWS_AT_ONCE];
    for q in (0..outputs).step_by(ROWS_AT_ONCE) {
        let Some(acc) = acc.get_mut(..ROWS_AT_ONCE.min(outputs - q)) else { return };
        for (r, a) in (q..).zip(acc.iter_mut()) {
            *a = [layer.init(r); 4];
        }
        if !layer.dense_rows(q, xs, n_in, cols, acc) {
            if !loaded {
                load(block, n_in, columns.get(..cols).unwrap_or(&[]), M::LANES, |a| layer.input(a));
                loaded = true;
            }
            layer.mac_rows(q, block, cols, acc);
        }
        for (c, out) in out.chunks_exact_mut(outputs).enumerate().take(cols) {
            let Some(out) = out.get_mut(q..q + acc.len()) else { return };
            for (r, (v, a)) in out.iter_mut().zip(&*acc).enumerate() {
                *v = layer.finish(q + r, a.get(c & 3).copied().unwrap_or(a[0])); // (c < cols ≤ 4)
            }
        }
    }
}

/// The layers of one network in one precision.
pub struct Net<'a, K: Kernels> {
    pub conv1: K::Linear<'a>,
    pub conv2: K::Linear<'a>,
    pub dense1: K::Linear<'a>,
    /// Forward and backward direction.
    pub lstm1: [K::Lstm<'a>; 2],
    pub lstm2: [K::Lstm<'a>; 2],
    pub dense2: K::Linear<'a>,
}

impl<'a, K: Kernels> Net<'a, K> {
    /// Loads and shape-checks every layer from a parsed file: the network's one table of layers (names and
    /// sizes from [`names`], for both precisions).
    pub fn load(file: &ModelFile<'a>) -> Result<Self, Error> {
        K::check(&file.arch)?;
        let linear = |layer: &'static str, relu: bool| {
            K::linear(file, layer, names::linear_sizes(&file.arch, layer).ok_or(Error::MissingTensor)?, relu)
        };
        let lstm = |prefix: &'static str| {
            K::lstm(file, prefix, names::lstm_sizes(&file.arch, prefix).ok_or(Error::MissingTensor)?)
        };
        let [conv1, conv2, dense1, dense2] = names::LINEAR;
        let [l1f, l1b, l2f, l2b] = names::LSTMS;
        Ok(Net {
            conv1: linear(conv1, true)?,
            conv2: linear(conv2, true)?,
            dense1: linear(dense1, true)?,
            lstm1: [lstm(l1f)?, lstm(l1b)?],
            lstm2: [lstm(l2f)?, lstm(l2b)?],
            dense2: linear(dense2, false)?,
        })
    }
}

/// Sizes derived from the architecture, in elements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    h: usize,
    w: usize,
    c1: usize,
    c2: usize,
    /// pool1 output rows and columns.
    h1: usize,
    w1: usize,
    /// pool2 output rows; time steps.
    h2: usize,
    steps: usize,
    d1: usize,
    l1: usize,
    l2: usize,
    classes: usize,
}

impl Layout {
    pub(crate) fn new(a: &Arch) -> Result<Self, Error> {
        let l = Layout {
            h: a.height as usize,
            w: a.width as usize,
            c1: a.conv1 as usize,
            c2: a.conv2 as usize,
            h1: a.height as usize / 2,
            w1: a.width as usize / 2,
            h2: a.pooled_height(),
            steps: a.steps(),
            d1: a.dense1 as usize,
            l1: a.lstm1 as usize,
            l2: a.lstm2 as usize,
            classes: a.classes as usize,
        };
        if l.h2 == 0 || l.steps == 0 || l.c1 == 0 || l.c2 == 0 || l.d1 == 0 || l.l1 == 0 || l.l2 == 0 {
            return Err(Error::BadArch);
        }
        if l.classes < 2 || l.classes > crate::MAX_CLASSES || a.max_label_len as usize > crate::MAX_LABEL_LEN {
            return Err(Error::Capacity);
        }
        Ok(l)
    }

    /// Elements of the conv front-end's buffers: 4 input columns, a ring of 4 pool1 columns and the
    /// pooled feature columns of [`DENSE_STEPS`] steps. Only this much of the conv maps is ever held.
    fn front_end(&self) -> usize {
        4 * self.h + 4 * self.h1 * self.c1 + DENSE_STEPS * self.h2 * self.c2
    }
    /// Block slots: the convs' 2×2 windows of patches, dense1's and dense2's inputs, the LSTM steps' inputs.
    fn block(&self) -> usize {
        let convs = conv_block_len(1).max(conv_block_len(self.c1) + conv_cache_len(self.c1));
        let dense = block_len(self.h2 * self.c2, DENSE_STEPS).max(block_len(2 * self.l2, DENSE_STEPS));
        let lstm = lstm_block_len(self.d1, self.l1).max(lstm_block_len(2 * self.l1, self.l2));
        convs.max(dense).max(lstm)
    }
    /// Sequence buffer A: dense1's output, later LSTM2's.
    fn seq_a(&self) -> usize {
        self.steps * self.d1.max(2 * self.l2)
    }
    /// Sequence buffer B: LSTM1's output; the front-end borrows it before that.
    fn seq_b(&self) -> usize {
        (self.steps * 2 * self.l1).max(self.front_end())
    }
    fn hidden(&self) -> usize {
        self.l1.max(self.l2)
    }
    pub(crate) fn scores(&self) -> usize {
        self.steps * self.classes
    }

    /// Scratch bytes for precision `K`, alignment slack included.
    pub(crate) fn scratch_bytes<K: Kernels>(&self) -> usize {
        bytes_for::<K::Act>(self.seq_a())
            + bytes_for::<K::Act>(self.seq_b())
            + bytes_for::<K::Act>(self.scores())
            + bytes_for::<K::Act>(self.hidden())
            + bytes_for::<K::Cell>(self.hidden())
            + bytes_for::<K::Gate>(LSTM_STEPS_SIZED * 4 * self.hidden())
            + bytes_for::<u32>(self.block_words::<K>())
    }
    /// The block in 32-bit words: kernels may load its slots in pairs, so it is word-aligned.
    fn block_words<K: Kernels>(&self) -> usize {
        (self.block() * core::mem::size_of::<K::In>()).div_ceil(4)
    }
}

/// Runs the network on `pixels` (u8, height × width, row-major), each read through `table` (the input
/// conversion, see [`crate::input`]), and returns the class scores, `steps × classes`, which live in `scratch`.
/// `probe` is told where each [`Stage`] ends.
pub(crate) fn forward<'s, K: Kernels, P: Probe>(
    net: &Net<'_, K>,
    l: &Layout,
    pixels: &[u8],
    table: &[u8; 256],
    mut scratch: &'s mut [u8],
    probe: &mut P,
) -> Result<&'s [K::Act], Error> {
    if pixels.len() != l.h * l.w {
        return Err(Error::ImageSize);
    }
    if scratch.len() < l.scratch_bytes::<K>() {
        return Err(Error::ScratchTooSmall);
    }
    let seq_a: &mut [K::Act] = take(&mut scratch, l.seq_a())?;
    let seq_b: &mut [K::Act] = take(&mut scratch, l.seq_b())?;
    let scores: &mut [K::Act] = take(&mut scratch, l.scores())?;
    let h: &mut [K::Act] = take(&mut scratch, l.hidden())?;
    let c: &mut [K::Cell] = take(&mut scratch, l.hidden())?;
    let gates: &mut [K::Gate] = take(&mut scratch, LSTM_STEPS_SIZED * 4 * l.hidden())?;
    let block: &mut [u32] = take(&mut scratch, l.block_words::<K>())?;
    let block: &mut [K::In] = bytemuck::try_cast_slice_mut(block).map_err(|_| Error::ScratchTooSmall)?;

    {
        let dense1_out = seq_a.get_mut(..l.steps * l.d1).ok_or(Error::ScratchTooSmall)?;
        front_end(net, l, Image { pixels, table }, seq_b, block, dense1_out, probe)?;
        let lstm1_out = seq_b.get_mut(..l.steps * 2 * l.l1).ok_or(Error::ScratchTooSmall)?;
        bilstm::<K, P>(
            &net.lstm1,
            dense1_out,
            l.d1,
            lstm1_out,
            l.l1,
            LstmWork { h: &mut *h, c: &mut *c, gates: &mut *gates, block: &mut *block },
            (probe, [Stage::Lstm1Forward, Stage::Lstm1Backward]),
        )?;
    }
    let lstm1_out = seq_b.get(..l.steps * 2 * l.l1).ok_or(Error::ScratchTooSmall)?;
    let lstm2_out = seq_a.get_mut(..l.steps * 2 * l.l2).ok_or(Error::ScratchTooSmall)?;
    let work = LstmWork { h, c, gates, block: &mut *block };
    bilstm::<K, P>(
        &net.lstm2,
        lstm1_out,
        2 * l.l1,
        lstm2_out,
        l.l2,
        work,
        (probe, [Stage::Lstm2Forward, Stage::Lstm2Backward]),
    )?;

    for (xs, out) in lstm2_out.chunks(DENSE_STEPS * 2 * l.l2).zip(scores.chunks_mut(DENSE_STEPS * l.classes)) {
        dense(&net.dense2, xs, 2 * l.l2, block, out);
    }
    probe.done(Stage::Dense2);
    Ok(scores)
}

/// conv1 → pool1 → conv2 → pool2 → dense1, one time step at a time: writes dense1's output for every
/// step into `out` (`steps × D1`). `work` holds the few columns in flight.
fn front_end<K: Kernels, P: Probe>(
    net: &Net<'_, K>,
    l: &Layout,
    image: Image<'_>,
    work: &mut [K::Act],
    block: &mut [K::In],
    out: &mut [K::Act],
    probe: &mut P,
) -> Result<(), Error> {
    let (input, rest) = work.split_at_mut_checked(4 * l.h).ok_or(Error::ScratchTooSmall)?;
    let pool1_col = l.h1 * l.c1;
    let (ring, rest) = rest.split_at_mut_checked(4 * pool1_col).ok_or(Error::ScratchTooSmall)?;
    // pool2's output columns (the features of DENSE_STEPS steps), dense1's input
    let fl = l.h2 * l.c2;
    let features = rest.get_mut(..DENSE_STEPS * fl).ok_or(Error::ScratchTooSmall)?;

    // pool2 column t needs conv2 columns 2t, 2t+1, which read pool1 columns 2t-1 ..= 2t+2: four of them,
    // so a ring of four slots (p mod 4) holds all in flight.
    let mut next_pool1 = 0;
    for t in 0..l.steps {
        let newest = (2 * t + 2).min(l.w1 - 1);
        while next_pool1 <= newest {
            let slot = ring.chunks_exact_mut(pool1_col).nth(next_pool1 % 4).ok_or(Error::ScratchTooSmall)?;
            pool1_column(net, l, image, next_pool1, input, block, slot);
            next_pool1 += 1;
        }
        probe.done(Stage::Conv1Pool);
        let col = |dx: usize| {
            let p = (2 * t + dx).checked_sub(1).filter(|&p| p < l.w1)?;
            ring.chunks_exact(pool1_col).nth(p % 4)
        };
        let slot = t % DENSE_STEPS;
        let feature = features.get_mut(slot * fl..(slot + 1) * fl).ok_or(Error::ScratchTooSmall)?;
        conv_pool(&net.conv2, [col(0), col(1), col(2), col(3)], block, feature);
        probe.done(Stage::Conv2Pool);
        // dense1 on the steps collected so far, once there are DENSE_STEPS of them (or at the last)
        if slot == DENSE_STEPS - 1 || t + 1 == l.steps {
            let first = t - slot;
            let out = out.get_mut(first * l.d1..(t + 1) * l.d1).ok_or(Error::ScratchTooSmall)?;
            dense(&net.dense1, features.get(..(slot + 1) * fl).unwrap_or(&[]), fl, block, out);
        }
        probe.done(Stage::Dense1);
    }
    Ok(())
}

/// Computes pool1 column `p` into `out` (`h1 × C1`): conv1 columns 2p and 2p+1, pooled. `input` holds
/// the image columns 2p-1 ..= 2p+2 as activations.
fn pool1_column<K: Kernels>(
    net: &Net<'_, K>,
    l: &Layout,
    image: Image<'_>,
    p: usize,
    input: &mut [K::Act],
    block: &mut [K::In],
    out: &mut [K::Act],
) {
    let mut present = [false; 4];
    for (dx, (col, present)) in input.chunks_exact_mut(l.h).zip(present.iter_mut()).enumerate() {
        let Some(src_x) = (2 * p + dx).checked_sub(1).filter(|&sx| sx < l.w) else {
            continue;
        };
        *present = true;
        for (v, row) in col.iter_mut().zip(image.pixels.chunks_exact(l.w)) {
            *v = K::pixel(crate::input::lookup(image.table, row.get(src_x).copied().unwrap_or(0)));
        }
    }
    let mut cols = input.chunks_exact(l.h);
    let mut next = |present: bool| cols.next().filter(|_| present);
    let cols = [next(present[0]), next(present[1]), next(present[2]), next(present[3])];
    conv_pool(&net.conv1, cols, block, out);
}

/// The input image and the table its pixels are read through.
#[derive(Clone, Copy)]
struct Image<'p> {
    pixels: &'p [u8],
    table: &'p [u8; 256],
}

/// An LSTM layer's working buffers: the state `(h, c)`, the gates of [`Kernels::STEPS_AT_ONCE`] steps and
/// the input block.
struct LstmWork<'w, K: Kernels> {
    h: &'w mut [K::Act],
    c: &'w mut [K::Cell],
    gates: &'w mut [K::Gate],
    block: &'w mut [K::In],
}

/// A bidirectional LSTM over `input` (`steps × n_in`), writing `out` (`steps × 2L`): each row holds the
/// forward state then the backward state, as PyTorch's `bidirectional=True` does. Both start from zero.
/// The probe is told when each direction (`stages[0]` forward, `stages[1]` backward) ends.
fn bilstm<K: Kernels, P: Probe>(
    layers: &[K::Lstm<'_>; 2],
    input: &[K::Act],
    n_in: usize,
    out: &mut [K::Act],
    hidden: usize,
    work: LstmWork<'_, K>,
    (probe, stages): (&mut P, [Stage; 2]),
) -> Result<(), Error> {
    let LstmWork { h, c, gates, block } = work;
    let h = h.get_mut(..hidden).ok_or(Error::ScratchTooSmall)?;
    let c = c.get_mut(..hidden).ok_or(Error::ScratchTooSmall)?;
    let at_once = K::STEPS_AT_ONCE.clamp(1, LSTM_STEPS_SIZED);
    let gates = gates.get_mut(..at_once * 4 * hidden).ok_or(Error::ScratchTooSmall)?;
    let steps = (input.len() / n_in.max(1)).min(out.len() / (2 * hidden).max(1));
    for ((dir, layer), stage) in layers.iter().enumerate().zip(stages) {
        h.fill(K::Act::default());
        c.fill(K::Cell::default());
        // The i-th step processed: forward from the first, backward from the last.
        let step = |i: usize| if dir == 0 { i } else { steps - 1 - i };
        for first in (0..steps).step_by(at_once) {
            let n = at_once.min(steps - first);
            let mut xs: [&[K::Act]; LSTM_STEPS_SIZED] = [&[]; LSTM_STEPS_SIZED];
            for (s, x) in xs.iter_mut().enumerate().take(n) {
                let t = step(first + s);
                *x = input.get(t * n_in..(t + 1) * n_in).ok_or(Error::ScratchTooSmall)?;
            }
            K::lstm_input(layer, xs.get(..n).unwrap_or(&[]), gates, block);
            for (s, g) in gates.chunks_exact_mut(4 * hidden).enumerate().take(n) {
                K::lstm_recur(layer, g, h, c, block);
                let t = step(first + s);
                let half = out.get_mut((2 * t + dir) * hidden..(2 * t + dir + 1) * hidden);
                half.ok_or(Error::ScratchTooSmall)?.copy_from_slice(h);
            }
        }
        probe.done(stage);
    }
    Ok(())
}
