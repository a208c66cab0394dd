//! Early stopping on the validation ELBO (Sec. 2.2: "The mean ELBO for the images in the
//! validation set is monitored during training ... We terminate training at this point").
//!
//! Higher ELBO is better. Training stops once `patience` consecutive epochs have not improved on
//! the best validation ELBO; the checkpoint of the best epoch is the one kept.

use serde::{Deserialize, Serialize};

/// State of the early-stopping rule; saved with the resume state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    /// Epochs without improvement tolerated before stopping.
    pub patience: usize,
    /// Epoch (1-based) with the best validation ELBO so far, 0 before the first epoch.
    pub best_epoch: usize,
    /// Best validation ELBO so far (nats per image; `None` before the first epoch).
    pub best_val_elbo: Option<f64>,
    /// Consecutive epochs since the best one.
    pub bad_epochs: usize,
}

/// What [`EarlyStopping::update`] decided for an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// New best: keep this epoch's weights as the checkpoint.
    Improved,
    /// No improvement; training continues.
    Continue,
    /// No improvement for `patience` epochs: stop.
    Stop,
}

impl EarlyStopping {
    pub fn new(patience: usize) -> Self {
        EarlyStopping {
            patience,
            best_epoch: 0,
            best_val_elbo: None,
            bad_epochs: 0,
        }
    }

    /// Record the validation ELBO of `epoch`.
    pub fn update(&mut self, epoch: usize, val_elbo: f64) -> Verdict {
        if self.best_val_elbo.is_none_or(|b| val_elbo > b) {
            self.best_val_elbo = Some(val_elbo);
            self.best_epoch = epoch;
            self.bad_epochs = 0;
            return Verdict::Improved;
        }
        self.bad_epochs += 1;
        if self.bad_epochs >= self.patience {
            Verdict::Stop
        } else {
            Verdict::Continue
        }
    }

    /// Epochs without improvement still allowed.
    pub fn patience_left(&self) -> usize {
        self.patience.saturating_sub(self.bad_epochs)
    }

    /// Whether the rule has already fired.
    pub fn stopped(&self) -> bool {
        self.best_val_elbo.is_some() && self.bad_epochs >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_after_patience_epochs_without_improvement() {
        let mut es = EarlyStopping::new(2);
        assert_eq!(es.update(1, -10.0), Verdict::Improved);
        assert_eq!(es.update(2, -9.0), Verdict::Improved);
        assert_eq!(es.update(3, -9.5), Verdict::Continue);
        assert_eq!(es.patience_left(), 1);
        assert_eq!(es.update(4, -8.0), Verdict::Improved);
        assert_eq!(es.update(5, -8.0), Verdict::Continue);
        assert_eq!(es.update(6, -8.1), Verdict::Stop);
        assert!(es.stopped());
        assert_eq!(es.best_epoch, 4);
        assert_eq!(es.best_val_elbo, Some(-8.0));
    }
}
