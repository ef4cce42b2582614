//! When a run stops or slows down: the CTC plateau, early stopping, the time limit and the learning-rate schedule.

use super::*;

/// CTC's blank plateau: a model whose validation CER is at least this reads (almost) nothing. Fresh
/// models output blanks only (CER 1) for their first epochs, sometimes for dozens on hard styles.
pub const PLATEAU_CER: f64 = 0.9;

/// Early stopping's patience while a model still reads nothing: this many epochs since the best
/// validation loss (or `patience`, if larger). The cap exists so that a run that cannot learn still ends
/// (at `epochs` at the latest, where the summary says it read nothing).
pub const PLATEAU_PATIENCE: usize = 40;

/// The first epoch of `history` whose validation CER is below [`PLATEAU_CER`].
pub fn first_reading(history: &[Epoch]) -> Option<usize> {
    history.iter().find(|e| e.val.cer < PLATEAU_CER).map(|e| e.epoch)
}

/// Whether early stopping ends a run after the epochs of `history`: `patience` epochs past the best
/// epoch ([`better`]), counted from when the model first read something; [`PLATEAU_PATIENCE`] while it
/// reads nothing (a falling loss on the plateau is not the model reading, and a rising one is not the
/// end of its learning).
pub fn early_stop(history: &[Epoch], best_epoch: usize, patience: usize) -> bool {
    let Some(done) = history.last().map(|e| e.epoch) else { return false };
    if best_epoch == 0 {
        return false;
    }
    match first_reading(history) {
        Some(first) => done >= best_epoch.max(first) + patience,
        None => done >= best_epoch + patience.max(PLATEAU_PATIENCE),
    }
}

/// Whether epoch `e` validates better than the best so far (`None`: there is none): by default the higher
/// sequence accuracy, then on a tie the lower CER, then the lower loss; with `by_loss`, the lower loss
/// alone (the seed's rule, Keras's `EarlyStopping(monitor="val_loss")`). CTC's loss is a poor judge of
/// reading: once a model reads, its loss can rise with a few confident errors while it reads more
/// captchas (the Python `captcha` style: best loss at epoch 13, 91.00% read; epoch 21, 95.00%).
pub fn better(e: &Epoch, best: Option<&Epoch>, by_loss: bool) -> bool {
    let Some(b) = best else { return true };
    if by_loss {
        return e.val_loss < b.val_loss;
    }
    if e.val.sequence != b.val.sequence || e.val.cer != b.val.cer {
        return reads_better(&e.val, &b.val);
    }
    e.val_loss < b.val_loss
}

/// `a` reads better than `b`: more captchas right, or as many with fewer character errors.
pub fn reads_better(a: &Accuracy, b: &Accuracy) -> bool {
    a.sequence > b.sequence || (a.sequence == b.sequence && a.cer < b.cer)
}

/// The epoch early stopping counts its patience from: the best epoch ([`better`]) or, unless judging by
/// the loss alone, a later one with the lowest validation loss so far: a loss still falling is a model still
/// learning, though its accuracy on a few hundred images may have peaked on one lucky epoch (the many-font
/// style: 47.00% at epoch 34 against 40-45% around it, its loss falling until epoch 44 and on).
pub fn last_progress(history: &[Epoch], best_epoch: usize, by_loss: bool) -> usize {
    let lowest_loss = history.iter().min_by(|a, b| a.val_loss.total_cmp(&b.val_loss)).map_or(0, |e| e.epoch);
    if by_loss {
        best_epoch
    } else {
        best_epoch.max(lowest_loss)
    }
}

/// Whether the epochs of `history` together trained longer than `max_minutes`. The epochs before an
/// interruption are in the checkpoint's history, so a resumed run stops after the same epoch as an
/// uninterrupted one whose epochs took as long: the first whose cumulative time crosses the limit.
pub fn time_limit_reached(history: &[Epoch], max_minutes: Option<f64>) -> bool {
    max_minutes.is_some_and(|m| history.iter().map(|e| e.seconds).sum::<f64>() > 60.0 * m)
}

/// Reduce-on-plateau: the halved learning rate once `lr_patience` epochs have passed since the best
/// epoch and since the last reduction (`lowered`), never below 1/64 of the initial rate.
pub(super) fn lower_lr(opts: &Options, lr: f64, epoch: usize, best_epoch: usize, lowered: usize) -> Option<f64> {
    let due = opts.lr_patience > 0 && epoch >= best_epoch.max(lowered) + opts.lr_patience;
    let floor = opts.learning_rate / 64.0;
    (due && lr > floor).then(|| (lr / 2.0).max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epochs 1..=n with validation CER `cer(epoch)`.
    pub(super) fn history(n: usize, cer: impl Fn(usize) -> f64) -> Vec<Epoch> {
        (1..=n)
            .map(|epoch| Epoch {
                epoch,
                loss: 15.0,
                val_loss: 15.0,
                val: Accuracy { sequence: 0.0, cer: cer(epoch) },
                seconds: 1.0,
            })
            .collect()
    }

    #[test]
    pub(super) fn the_best_epoch_reads_the_most() {
        let e = |sequence: f64, cer: f64, val_loss: f64| Epoch {
            epoch: 1,
            loss: 1.0,
            val_loss,
            val: Accuracy { sequence, cer },
            seconds: 1.0,
        };
        let best = e(0.91, 0.028, 0.73);
        // more captchas read wins over a lower loss; the seed's rule judges by the loss alone
        assert!(better(&e(0.95, 0.020, 0.84), Some(&best), false));
        assert!(!better(&e(0.95, 0.020, 0.84), Some(&best), true));
        assert!(!better(&e(0.90, 0.010, 0.50), Some(&best), false));
        assert!(better(&e(0.90, 0.010, 0.50), Some(&best), true));
        // ties: the lower CER, then the lower loss; the same figures are no improvement
        assert!(better(&e(0.91, 0.020, 0.90), Some(&best), false));
        assert!(better(&e(0.91, 0.028, 0.70), Some(&best), false));
        assert!(!better(&e(0.91, 0.028, 0.73), Some(&best), false));
        // on the plateau (nothing read) the CER and the loss decide; the first epoch is always the best
        assert!(better(&e(0.0, 0.95, 15.0), Some(&e(0.0, 0.99, 14.0)), false));
        assert!(better(&e(0.0, 1.0, 20.0), None, false) && better(&e(0.0, 1.0, 20.0), None, true));
    }

    #[test]
    pub(super) fn patience_counts_from_the_later_of_the_best_epoch_and_the_lowest_loss() {
        // the loss falling every epoch: the lowest is the last
        let h = history(12, |_| 0.5)
            .into_iter()
            .map(|e| Epoch { val_loss: 20.0 - e.epoch as f64, ..e })
            .collect::<Vec<_>>();
        assert_eq!(last_progress(&h, 3, false), 12);
        assert_eq!(last_progress(&h, 3, true), 3);
        // the loss lowest at epoch 2, the best epoch later: the best epoch
        let mut h2 = h.clone();
        h2[1].val_loss = 0.1;
        assert_eq!(last_progress(&h2, 7, false), 7);
        assert_eq!(last_progress(&[], 0, false), 0);
    }

    #[test]
    pub(super) fn the_time_limit_counts_every_epoch_in_the_history() {
        // Ten epochs of 6 s: a one-minute budget is crossed by the eleventh, not before.
        let h = history(10, |_| 0.5).into_iter().map(|e| Epoch { seconds: 6.0, ..e }).collect::<Vec<_>>();
        assert!(!time_limit_reached(&h, Some(1.0)));
        assert!(!time_limit_reached(&h, None));
        let mut more = h.clone();
        more.push(Epoch { epoch: 11, ..h[0].clone() });
        assert!(time_limit_reached(&more, Some(1.0)));
        // Resuming sees the same history from the checkpoint, so it stops at the same epoch.
        assert!(time_limit_reached(&more[..], Some(0.99)) && !time_limit_reached(&more[..9], Some(0.99)));
    }

    #[test]
    pub(super) fn early_stopping_waits_while_the_model_reads_nothing() {
        // On the plateau throughout, best loss at epoch 17: patience 10 would stop at 27 (as it did on a
        // hard style); the plateau's patience waits until 57.
        assert!(!early_stop(&history(27, |_| 1.0), 17, 10));
        assert!(!early_stop(&history(56, |_| 1.0), 17, 10));
        assert!(early_stop(&history(57, |_| 1.0), 17, 10));
        assert_eq!(first_reading(&history(57, |_| 1.0)), None);
        // A patience above the plateau's is kept.
        assert!(!early_stop(&history(60, |_| 1.0), 17, 50));
        // Off the plateau at epoch 35 (CER below 0.9), best loss still at 17: patience counts from 35.
        let left = |e: usize| if e >= 35 { 0.5 } else { 1.0 };
        assert_eq!(first_reading(&history(44, left)), Some(35));
        assert!(!early_stop(&history(44, left), 17, 10));
        assert!(early_stop(&history(45, left), 17, 10));
        // Reading from the start: the seed's rule, patience epochs past the best.
        assert!(!early_stop(&history(19, |_| 0.1), 10, 10));
        assert!(early_stop(&history(20, |_| 0.1), 10, 10));
        // No epoch yet, or no best: never.
        assert!(!early_stop(&[], 0, 10));
        assert!(!early_stop(&history(5, |_| 0.1), 0, 1));
    }

    #[test]
    pub(super) fn learning_rate_halves_after_a_plateau_and_stops_at_its_floor() {
        let opts = Options { lr_patience: 4, learning_rate: 1e-3, ..Default::default() };
        // best at epoch 10: nothing before epoch 14, then halved
        assert_eq!(lower_lr(&opts, 1e-3, 13, 10, 0), None);
        assert_eq!(lower_lr(&opts, 1e-3, 14, 10, 0), Some(5e-4));
        // the next reduction waits another 4 epochs after the last one
        assert_eq!(lower_lr(&opts, 5e-4, 17, 10, 14), None);
        assert_eq!(lower_lr(&opts, 5e-4, 18, 10, 14), Some(2.5e-4));
        // a new best epoch restarts the wait
        assert_eq!(lower_lr(&opts, 2.5e-4, 20, 19, 18), None);
        // never below 1/64 of the initial rate
        assert_eq!(lower_lr(&opts, 1e-3 / 64.0, 40, 10, 30), None);
        assert_eq!(lower_lr(&opts, 1.2e-3 / 64.0, 40, 10, 30), Some(1e-3 / 64.0));
        // 0 keeps the rate constant (the seed's recipe)
        assert_eq!(lower_lr(&Options { lr_patience: 0, ..opts }, 1e-3, 50, 1, 0), None);
    }
}
