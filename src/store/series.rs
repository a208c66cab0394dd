//! A memory-bounded metric series for drawing.
//!
//! A metrics file may hold millions of lines; a chart is at most a few hundred cells wide. A
//! [`Series`] therefore keeps at most [`Series::capacity`] buckets of consecutive points. Each
//! bucket remembers its minimum and maximum (and where they occurred), so spikes such as a loss
//! blow-up survive downsampling (min/max decimation). When the bucket count exceeds the capacity,
//! neighbouring buckets are merged pairwise and every later bucket covers twice as many points:
//! memory stays O(capacity) however long the run, and appending is amortised O(1).

/// One bucket of consecutive points.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Bucket {
    /// Number of points in the bucket.
    n: u64,
    /// (x, y) of the smallest y.
    min: (f64, f64),
    /// (x, y) of the largest y.
    max: (f64, f64),
    /// The most recent point (for "last value" read-outs and line continuity).
    last: (f64, f64),
    /// x of the first point (where the bucket starts, for truncation).
    first_x: f64,
}

impl Bucket {
    fn new(x: f64, y: f64) -> Bucket {
        Bucket {
            n: 1,
            min: (x, y),
            max: (x, y),
            last: (x, y),
            first_x: x,
        }
    }

    fn add(&mut self, x: f64, y: f64) {
        self.n += 1;
        if y < self.min.1 {
            self.min = (x, y);
        }
        if y > self.max.1 {
            self.max = (x, y);
        }
        self.last = (x, y);
    }

    fn merge(&mut self, other: &Bucket) {
        self.n += other.n;
        if other.min.1 < self.min.1 {
            self.min = other.min;
        }
        if other.max.1 > self.max.1 {
            self.max = other.max;
        }
        self.last = other.last;
    }
}

/// Downsampled (x, y) series with exact min/max envelope per bucket.
#[derive(Clone, Debug)]
pub struct Series {
    buckets: Vec<Bucket>,
    per_bucket: u64,
    capacity: usize,
    count: u64,
    skipped: u64,
    y_range: Option<(f64, f64)>,
    x_range: Option<(f64, f64)>,
}

/// Default number of buckets: plenty for any terminal width (each bucket draws two points).
pub const DEFAULT_CAPACITY: usize = 2048;

impl Default for Series {
    fn default() -> Self {
        Series::with_capacity(DEFAULT_CAPACITY)
    }
}

impl Series {
    /// An empty series keeping at most `capacity` buckets (at least 2).
    pub fn with_capacity(capacity: usize) -> Series {
        Series {
            buckets: Vec::new(),
            per_bucket: 1,
            capacity: capacity.max(2),
            count: 0,
            skipped: 0,
            y_range: None,
            x_range: None,
        }
    }

    /// Bucket budget of this series.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Append a point. Non-finite values are counted in [`Series::skipped`] and not stored.
    pub fn push(&mut self, x: f64, y: f64) {
        if !x.is_finite() || !y.is_finite() {
            self.skipped += 1;
            return;
        }
        self.count += 1;
        self.y_range = Some(match self.y_range {
            Some((lo, hi)) => (lo.min(y), hi.max(y)),
            None => (y, y),
        });
        self.x_range = Some(match self.x_range {
            Some((lo, hi)) => (lo.min(x), hi.max(x)),
            None => (x, x),
        });
        match self.buckets.last_mut() {
            Some(b) if b.n < self.per_bucket => b.add(x, y),
            _ => self.buckets.push(Bucket::new(x, y)),
        }
        if self.buckets.len() > self.capacity {
            self.compact();
        }
    }

    /// Drop the points from the first one with x >= `x` on (a resumed run re-logs an epoch:
    /// the last lines win). Exact while buckets hold single points (short series such as epochs);
    /// for long downsampled series a bucket straddling `x` is kept whole.
    pub fn truncate_from(&mut self, x: f64) {
        let mut dropped = false;
        while self.buckets.last().is_some_and(|b| b.first_x >= x) {
            let b = self.buckets.pop().expect("checked");
            self.count -= b.n;
            dropped = true;
        }
        if dropped {
            self.y_range = self.buckets.iter().fold(None, |r, b| {
                Some(match r {
                    Some((lo, hi)) => (f64::min(lo, b.min.1), f64::max(hi, b.max.1)),
                    None => (b.min.1, b.max.1),
                })
            });
            self.x_range = self.buckets.iter().fold(None, |r: Option<(f64, f64)>, b| {
                let (lo, hi) = (b.first_x.min(b.last.0), b.first_x.max(b.last.0));
                Some(match r {
                    Some((a, c)) => (a.min(lo), c.max(hi)),
                    None => (lo, hi),
                })
            });
        }
    }

    /// Merge neighbouring buckets pairwise and double the bucket size.
    fn compact(&mut self) {
        let mut merged = Vec::with_capacity(self.buckets.len() / 2 + 1);
        for pair in self.buckets.chunks(2) {
            let mut b = pair[0];
            if let Some(second) = pair.get(1) {
                b.merge(second);
            }
            merged.push(b);
        }
        self.buckets = merged;
        self.per_bucket *= 2;
    }

    /// Number of finite points pushed so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Number of non-finite points that were dropped.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Number of points currently held (bounded by twice the capacity when drawn).
    pub fn stored_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The most recent point.
    pub fn last(&self) -> Option<(f64, f64)> {
        self.buckets.last().map(|b| b.last)
    }

    /// Smallest and largest y seen.
    pub fn y_range(&self) -> Option<(f64, f64)> {
        self.y_range
    }

    /// Smallest and largest x seen.
    pub fn x_range(&self) -> Option<(f64, f64)> {
        self.x_range
    }

    /// The point with the smallest y.
    pub fn argmin(&self) -> Option<(f64, f64)> {
        self.buckets
            .iter()
            .map(|b| b.min)
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// The point with the largest y.
    pub fn argmax(&self) -> Option<(f64, f64)> {
        self.buckets
            .iter()
            .map(|b| b.max)
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Points to draw, reduced to at most about `2 * max_points` by min/max decimation.
    /// Within each bucket the min and max are emitted in x order, so a line chart follows spikes.
    pub fn points(&self, max_points: usize) -> Vec<(f64, f64)> {
        let max_points = max_points.max(1);
        let group = self.buckets.len().div_ceil(max_points).max(1);
        let mut out = Vec::with_capacity(2 * self.buckets.len().div_ceil(group));
        for chunk in self.buckets.chunks(group) {
            let mut b = chunk[0];
            for other in &chunk[1..] {
                b.merge(other);
            }
            if b.n == 1 || b.min == b.max {
                out.push(b.min);
            } else if b.min.0 <= b.max.0 {
                out.push(b.min);
                out.push(b.max);
            } else {
                out.push(b.max);
                out.push(b.min);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_series_is_exact() {
        let mut s = Series::with_capacity(16);
        for i in 0..10 {
            s.push(i as f64, (i * i) as f64);
        }
        let p = s.points(100);
        assert_eq!(p.len(), 10);
        assert_eq!(p[3], (3.0, 9.0));
        assert_eq!(s.last(), Some((9.0, 81.0)));
    }

    #[test]
    fn million_points_stay_bounded_and_keep_spikes() {
        let mut s = Series::with_capacity(64);
        for i in 0..1_000_000u64 {
            let y = if i == 777_777 {
                1e6
            } else if i == 123_456 {
                -1e6
            } else {
                (i % 7) as f64
            };
            s.push(i as f64, y);
        }
        assert!(s.stored_buckets() <= 64);
        assert_eq!(s.len(), 1_000_000);
        let p = s.points(32);
        assert!(p.len() <= 64, "{}", p.len());
        assert!(p.contains(&(777_777.0, 1e6)));
        assert!(p.contains(&(123_456.0, -1e6)));
        assert_eq!(s.y_range(), Some((-1e6, 1e6)));
        assert_eq!(s.argmax(), Some((777_777.0, 1e6)));
        // x stays sorted for line drawing
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn truncation_keeps_the_last_lines() {
        let mut s = Series::with_capacity(16);
        for e in 1..=5 {
            s.push(e as f64, e as f64 * 10.0);
        }
        // epochs 4 and 5 logged again after a resume
        s.truncate_from(4.0);
        s.push(4.0, 41.0);
        assert_eq!(s.len(), 4);
        assert_eq!(s.last(), Some((4.0, 41.0)));
        assert_eq!(
            s.points(100),
            vec![(1.0, 10.0), (2.0, 20.0), (3.0, 30.0), (4.0, 41.0)]
        );
        assert_eq!(s.y_range(), Some((10.0, 41.0)));
    }

    #[test]
    fn non_finite_values_are_skipped() {
        let mut s = Series::default();
        s.push(0.0, f64::NAN);
        s.push(1.0, f64::INFINITY);
        s.push(2.0, 1.0);
        assert_eq!((s.len(), s.skipped()), (1, 2));
    }
}
