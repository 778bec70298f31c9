use serde::{Deserialize, Serialize};

/// The test accuracies a learner reports, as the paper and its peers compare them (fractions in `[0, 1]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TestAccuracy {
    pub best: f64,
    pub last: f64,
    /// Median of the last 20 evaluations (fewer when fewer were made).
    pub median_last20: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub swa: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ema: Option<f64>,
}

impl TestAccuracy {
    /// Summarises a history of test accuracies, one per evaluation, in order.
    pub fn from_history(history: &[f64]) -> Self {
        let last = history.last().copied().unwrap_or(0.0);
        let best = history.iter().copied().fold(0.0, f64::max);
        let mut tail: Vec<f64> = history[history.len().saturating_sub(20)..].to_vec();
        tail.sort_by(f64::total_cmp);
        let median_last20 = match tail.len() {
            0 => 0.0,
            n if n % 2 == 1 => tail[n / 2],
            n => (tail[n / 2 - 1] + tail[n / 2]) / 2.0,
        };
        TestAccuracy { best, last, median_last20, swa: None, ema: None }
    }
}

/// What phase 3 produces. The learner writes its weights into its stage folder; this carries the headline figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classifier {
    pub test_accuracy: Option<TestAccuracy>,
}
