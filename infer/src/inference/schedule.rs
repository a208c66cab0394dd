//! Learning-rate schedules in the notation of GIGA-Lens Table 1: `a -(s, k)-> b` is a rate going from `a` to
//! `b` over `k` iterations with polynomial shape `s` (linear or quadratic), constant at `b` afterwards.
//! The polynomial follows optax's `polynomial_schedule` used by the GIGA-Lens code:
//! `rate(t) = (a - b) (1 - t/k)^power + b` for `t < k`.
//!
//! A schedule is a sequence of such ramps, so a warm-up followed by a decay is two ramps.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

/// One polynomial ramp from `from` to `to` over `steps` iterations.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ramp {
    pub from: f64,
    pub to: f64,
    pub steps: usize,
    /// 1 = linear, 2 = quadratic.
    pub power: f64,
}

/// Piecewise schedule: the ramps in order, then constant at the last ramp's `to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrSchedule {
    pub ramps: Vec<Ramp>,
}

impl LrSchedule {
    /// A constant rate.
    pub fn constant(rate: f64) -> Self {
        Self {
            ramps: vec![Ramp {
                from: rate,
                to: rate,
                steps: 0,
                power: 1.0,
            }],
        }
    }

    /// A single ramp `from -(power, steps)-> to`.
    pub fn ramp(from: f64, to: f64, steps: usize, power: f64) -> Self {
        Self {
            ramps: vec![Ramp {
                from,
                to,
                steps,
                power,
            }],
        }
    }

    /// Appends a ramp starting where the schedule currently ends.
    pub fn then(mut self, to: f64, steps: usize, power: f64) -> Self {
        let from = self.ramps.last().map_or(to, |r| r.to);
        self.ramps.push(Ramp {
            from,
            to,
            steps,
            power,
        });
        self
    }

    /// GIGA-Lens Table 1, MAP: 1e-2 -(lin, 300)-> 1e-3.
    pub fn gigalens_map() -> Self {
        Self::ramp(1e-2, 1e-3, 300, 1.0)
    }

    /// GIGA-Lens Table 1, VI: 0 -(quad, 500)-> 1e-3 (the slow start lets Adam settle its moment estimates).
    pub fn gigalens_vi() -> Self {
        Self::ramp(0.0, 1e-3, 500, 2.0)
    }

    /// VI in Laplace-whitened coordinates (unit scales): 0 -(quad, 50)-> 1e-2 -(linear, 250)-> 1e-3.
    pub fn whitened_vi() -> Self {
        Self::ramp(0.0, 1e-2, 50, 2.0).then(1e-3, 250, 1.0)
    }

    /// The same schedule from iteration `k` on: `shifted(k).at(t) == at(t + k)` (a shifted polynomial
    /// ramp is again one: `(a - b) ((K - k)/K)^p (1 - t/(K - k))^p + b`).
    pub fn shifted(&self, k: usize) -> Self {
        let mut k = k;
        let mut ramps = Vec::new();
        for r in &self.ramps {
            if k >= r.steps {
                k -= r.steps;
                continue;
            }
            let left = r.steps - k;
            let frac = left as f64 / r.steps as f64;
            ramps.push(Ramp {
                from: (r.from - r.to) * frac.powf(r.power) + r.to,
                to: r.to,
                steps: left,
                power: r.power,
            });
            k = 0;
        }
        if ramps.is_empty() {
            return Self::constant(self.at(usize::MAX));
        }
        Self { ramps }
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            !self.ramps.is_empty(),
            "learning-rate schedule has no ramps"
        );
        for (i, r) in self.ramps.iter().enumerate() {
            ensure!(
                r.from.is_finite() && r.to.is_finite() && r.from >= 0.0 && r.to >= 0.0,
                "learning-rate ramp {i}: rates must be finite and >= 0, got {} -> {}",
                r.from,
                r.to
            );
            ensure!(
                r.power.is_finite() && r.power > 0.0,
                "learning-rate ramp {i}: power must be > 0, got {}",
                r.power
            );
        }
        Ok(())
    }

    /// Rate at iteration `t` (0-based).
    pub fn at(&self, t: usize) -> f64 {
        let mut t = t;
        for r in &self.ramps {
            if t < r.steps {
                let frac = 1.0 - t as f64 / r.steps as f64;
                return (r.from - r.to) * frac.powf(r.power) + r.to;
            }
            t -= r.steps;
        }
        self.ramps.last().map_or(0.0, |r| r.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table1_schedules() {
        let m = LrSchedule::gigalens_map();
        assert!((m.at(0) - 1e-2).abs() < 1e-17);
        assert!((m.at(150) - 5.5e-3).abs() < 1e-15);
        assert_eq!(m.at(300), 1e-3);
        assert_eq!(m.at(10_000), 1e-3);
        let v = LrSchedule::gigalens_vi();
        assert!(v.at(0).abs() < 1e-18);
        // 1e-3 * (1 - (1 - 250/500)^2) = 0.75e-3
        assert!((v.at(250) - 0.75e-3).abs() < 1e-15);
        assert_eq!(v.at(999), 1e-3);
        let w = LrSchedule::ramp(0.0, 1.0, 10, 1.0).then(0.5, 10, 1.0);
        assert!(
            (w.at(5) - 0.5).abs() < 1e-15 && (w.at(15) - 0.75).abs() < 1e-15 && w.at(25) == 0.5
        );
        assert!(LrSchedule::ramp(-1.0, 1.0, 5, 1.0).validate().is_err());
        for sched in [m, v, w] {
            for k in [0, 3, 10, 17, 250, 400, 2000] {
                let s = sched.shifted(k);
                for t in [0, 1, 7, 120, 600] {
                    assert!(
                        (s.at(t) - sched.at(t + k)).abs() < 1e-15,
                        "{sched:?} shifted {k} at {t}"
                    );
                }
            }
        }
    }
}
