//! Which `summary.json` numbers a run's headline shows, as a rule on the keys that any stage's plugin may follow,
//! so that the binary names no plugin and no learner's keys.
//!
//! The headline (`relab run`'s last lines) shows, in this order: the fractions named in [`HEADLINE_KEYS`] that the
//! summary has, `test_accuracy`'s entries, the plain-view figures of a learner that evaluates on more views than the
//! plain image (every key `plain_test_accuracy_<view>`, see [`PLAIN_TEST_ACCURACY_PREFIX`]), then the stage times.

/// Top-level fractions shown first, one line each, when a stage sets them: an encoder's kNN accuracy on its own
/// features (an SSL method's monitor), the propagated labels' accuracy, the selected subset's precision.
pub const HEADLINE_KEYS: &[&str] = &["knn_accuracy", "propagation_accuracy", "subset_precision"];

/// A learner that evaluates on more test views than the plain image (and so reports `test_accuracy` over those
/// views) sets the plain image's figures as `plain_test_accuracy_<view>` (e.g. `plain_test_accuracy_last`); the
/// headline shows them on one line, `plain test views: <view> <value>, ...`, in the summary's key order.
pub const PLAIN_TEST_ACCURACY_PREFIX: &str = "plain_test_accuracy_";

/// The plain-view figures of `summary`: `(view, value)` for every `plain_test_accuracy_<view>` key, in key order.
pub fn plain_test_accuracies(summary: &serde_json::Map<String, serde_json::Value>) -> Vec<(&str, &serde_json::Value)> {
    summary.iter().filter_map(|(k, v)| k.strip_prefix(PLAIN_TEST_ACCURACY_PREFIX).map(|view| (view, v))).collect()
}
