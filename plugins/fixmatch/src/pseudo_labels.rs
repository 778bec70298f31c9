//! FixMatch's pseudo-labels (method §6b.1 item 6): each unlabelled image's hard label is the argmax of its weak
//! view's class probabilities, and it is used only where that maximum reaches the confidence threshold.

/// Hard labels and their mask, one per row of the probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct PseudoLabels {
    /// `argmax_c q_bc`; the first class on ties.
    pub labels: Vec<u32>,
    /// `1[max_c q_bc ≥ τ]` (the comparison is `≥`, as TF's and the ports' `ge`).
    pub mask: Vec<f32>,
}

impl PseudoLabels {
    /// From `rows × classes` probabilities (row-major) and the threshold τ.
    pub fn new(probabilities: &[f32], classes: usize, threshold: f32) -> Self {
        assert!(classes > 0 && probabilities.len().is_multiple_of(classes), "rows of {classes} probabilities");
        let (labels, mask) = probabilities
            .chunks_exact(classes)
            .map(|row| {
                let (best, top) = row
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |(b, m), (c, &p)| if p > m { (c, p) } else { (b, m) });
                (best as u32, if top >= threshold { 1.0 } else { 0.0 })
            })
            .unzip();
        PseudoLabels { labels, mask }
    }

    /// The share of rows whose pseudo-label is used (the "mask rate", TF's `monitors/mask`).
    pub fn mask_rate(&self) -> f64 {
        if self.mask.is_empty() { 0.0 } else { self.used() as f64 / self.mask.len() as f64 }
    }

    /// Rows whose mask is 1.
    pub fn used(&self) -> usize {
        self.mask.iter().filter(|&&m| m > 0.0).count()
    }

    /// How many pseudo-labels equal `truth` (all rows, and the used rows only): a diagnostic against the hidden
    /// labels, never a training signal.
    pub fn correct(&self, truth: &[u32]) -> (usize, usize) {
        assert_eq!(truth.len(), self.labels.len(), "one true label per pseudo-label");
        let hits = self.labels.iter().zip(truth).map(|(a, b)| a == b);
        let all = hits.clone().filter(|&h| h).count();
        let used = hits.zip(&self.mask).filter(|&(h, &m)| h && m > 0.0).count();
        (all, used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_labels_and_a_mask_that_keeps_the_threshold_itself() {
        // τ = 0.75 is exact in f32: a maximum of exactly 0.75 passes (≥), 0.74 does not.
        let q = [0.75, 0.25, 0.0, /**/ 0.13, 0.74, 0.13, /**/ 0.05, 0.05, 0.9, /**/ 0.5, 0.5, 0.0];
        let p = PseudoLabels::new(&q, 3, 0.75);
        assert_eq!(p.labels, vec![0, 1, 2, 0], "argmax per row, the first class on a tie");
        assert_eq!(p.mask, vec![1.0, 0.0, 1.0, 0.0]);
        assert_eq!((p.used(), p.mask_rate()), (2, 0.5));
        // Truth 0, 1, 0, 0: three labels right, of which one among the used rows.
        assert_eq!(p.correct(&[0, 1, 0, 0]), (3, 1));
        let strict = PseudoLabels::new(&q, 3, f32::from_bits(0.75f32.to_bits() + 1));
        assert_eq!(strict.mask, vec![0.0, 0.0, 1.0, 0.0], "just above 0.75, the 0.75 row drops out");
    }
}
