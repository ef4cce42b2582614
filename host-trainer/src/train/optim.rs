//! Adam (written out so its moments can be checkpointed) and the moving average of the weights.

use tch::Tensor;

/// Adam (Kingma & Ba) with Keras's epsilon, written out so that its moments can be checkpointed.
pub(super) struct Adam {
    pub(super) lr: f64,
    pub(super) steps: i64,
    pub(super) m: Vec<Tensor>,
    pub(super) v: Vec<Tensor>,
}

impl Adam {
    const B1: f64 = 0.9;
    const B2: f64 = 0.999;
    const EPS: f64 = 1e-7;

    pub(super) fn new(params: &[Tensor], lr: f64) -> Self {
        let zeros = || params.iter().map(Tensor::zeros_like).collect();
        Adam { lr, steps: 0, m: zeros(), v: zeros() }
    }

    pub(super) fn step(&mut self, params: &[Tensor]) {
        self.steps += 1;
        let t = self.steps as i32;
        let (c1, c2) = (1.0 - Self::B1.powi(t), 1.0 - Self::B2.powi(t));
        tch::no_grad(|| {
            for ((p, m), v) in params.iter().zip(&mut self.m).zip(&mut self.v) {
                let mut g = p.grad();
                if !g.defined() {
                    continue;
                }
                m.copy_(&(&*m * Self::B1 + &g * (1.0 - Self::B1)));
                v.copy_(&(&*v * Self::B2 + &g * &g * (1.0 - Self::B2)));
                let update = (&*m / c1) / ((&*v / c2).sqrt() + Self::EPS) * self.lr;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&update);
                let _ = g.zero_();
            }
        });
    }
}

/// An exponential moving average of the weights (Polyak averaging, as in TensorFlow's
/// `ExponentialMovingAverage`): after each batch `avg = d·avg + (1-d)·w`, with the decay `d` warmed up
/// as `min(decay, (1+t)/(10+t))` so the first batches do not drag the average back to the random start.
/// Batch norm's running statistics are averaged too. The average sits in a flatter part of the loss than
/// the last step's weights, which is what reading unseen captchas needs.
pub(super) struct Ema {
    pub(super) decay: f64,
    pub(super) avg: Vec<Tensor>,
}

impl Ema {
    pub(super) fn new(decay: f64, weights: &[Tensor]) -> Self {
        Ema { decay, avg: weights.iter().map(|t| t.detach().copy()).collect() }
    }

    pub(super) fn update(&mut self, weights: &[Tensor], steps: i64) {
        let d = self.decay.min((1.0 + steps as f64) / (10.0 + steps as f64));
        tch::no_grad(|| {
            for (a, w) in self.avg.iter_mut().zip(weights) {
                let _ = a.lerp_(w, 1.0 - d); // a + (1-d)(w - a), in place
            }
        });
    }

    /// Runs `f` with the averaged weights in `weights`, then puts the weights back.
    pub(super) fn with_average<T>(&self, weights: &[Tensor], f: impl FnOnce() -> T) -> T {
        let saved: Vec<Tensor> = weights.iter().map(|t| t.detach().copy()).collect();
        copy_all(weights, &self.avg);
        let out = f();
        copy_all(weights, &saved);
        out
    }
}

/// Copies each tensor of `src` into its twin in `dst`, in place (the model sees the change).
pub(super) fn copy_all(dst: &[Tensor], src: &[Tensor]) {
    tch::no_grad(|| dst.iter().zip(src).for_each(|(d, s)| d.shallow_clone().copy_(s)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn the_average_warms_up_follows_the_weights_and_is_lent_to_the_model_only_inside_with_average() {
        let w = [Tensor::from_slice(&[1.0f32, -2.0])];
        let mut ema = Ema::new(0.9, &w);
        let values = |t: &Tensor| Vec::<f32>::try_from(t).unwrap();
        tch::no_grad(|| w[0].shallow_clone().copy_(&Tensor::from_slice(&[3.0f32, 0.0])));
        // first step: the warm-up decay (1+1)/(10+1) = 2/11, not 0.9
        ema.update(&w, 1);
        let close = |got: Vec<f32>, want: [f32; 2]| {
            assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "{got:?} vs {want:?}");
        };
        let d = 2.0f32 / 11.0;
        close(values(&ema.avg[0]), [d * 1.0 + (1.0 - d) * 3.0, d * -2.0]);
        // later steps: the decay itself
        let before = values(&ema.avg[0]);
        ema.update(&w, 1000);
        let after = values(&ema.avg[0]);
        close(after.clone(), [0.9 * before[0] + 0.1 * 3.0, 0.9 * before[1]]);
        // inside: the model sees the average; after: its own weights again
        let seen = ema.with_average(&w, || values(&w[0]));
        assert_eq!(seen, after);
        assert_eq!(values(&w[0]), [3.0, 0.0]);
    }
}
