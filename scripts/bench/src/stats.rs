//! Small statistics over benchmark runs: median, minimum, maximum.
//!
//! Benchmark figures are measurements (rates, latencies, bytes), never money, so `f64` is the right type here.

/// The values one metric took over the runs of a figure.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<f64>,
}

impl Samples {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_values(values: Vec<f64>) -> Self {
        Self { values }
    }

    pub fn push(&mut self, value: f64) {
        self.values.push(value);
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    /// The median (mean of the two middle values for an even count); `None` when empty.
    pub fn median(&self) -> Option<f64> {
        let v = self.sorted();
        let n = v.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(v[n / 2]),
            _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }

    pub fn min(&self) -> Option<f64> {
        self.sorted().first().copied()
    }

    pub fn max(&self) -> Option<f64> {
        self.sorted().last().copied()
    }

    /// Element-wise ratio `self[i] / other[i]` over the runs both have (paired runs: each run measures the figure and
    /// its baseline one after the other, so the ratio cancels what the shared machine was doing at that moment).
    pub fn paired_ratio(&self, baseline: &Samples) -> Samples {
        Samples::from_values(
            self.values
                .iter()
                .zip(&baseline.values)
                .filter(|(_, b)| **b != 0.0)
                .map(|(a, b)| a / b)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Samples::from_values(vec![3.0, 1.0, 2.0]);
        assert_eq!(s.median(), Some(2.0));
        assert_eq!(s.min(), Some(1.0));
        assert_eq!(s.max(), Some(3.0));
        let even = Samples::from_values(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!(even.median(), Some(2.5));
        assert_eq!(Samples::new().median(), None);
    }

    #[test]
    fn paired_ratio_skips_zero_baselines() {
        let a = Samples::from_values(vec![10.0, 20.0, 30.0]);
        let b = Samples::from_values(vec![5.0, 0.0, 10.0]);
        assert_eq!(a.paired_ratio(&b).values(), &[2.0, 3.0]);
    }
}
