use relab_core::registry::ParamError;
use serde::{Deserialize, Serialize};

/// How an edge of the kNN graph is weighted from its two (unit-length, whitened) endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// `max(cos θ, 0)^γ`: similarity to a power, as Iscen et al.'s label propagation (INTENDED, `docs/method.md`
    /// §10 D1).
    #[default]
    Cosine,
    /// `(‖x − y‖²)^γ`: the released ReLaB code's weight (its FAISS index is L2), which grows with the distance.
    L2,
}

/// How the propagated scores are balanced across classes before the hard labels are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// The argmax of each row as it is: the original's.
    #[default]
    None,
    /// Class mass normalisation (Zhu et al., 2003): each class's scores are divided by that class's total score
    /// over all samples before the argmax, so a class whose few seeds sit in a dense region does not take more than
    /// its share. It assumes classes of about equal size, as the training sets of Fashion-MNIST, CIFAR and
    /// miniImageNet are.
    ClassMass,
    /// Sinkhorn balancing: the scores, raised to `sinkhorn_power`, scaled until every class holds the same mass and
    /// every sample's scores sum to one, before the argmax. Where class mass normalisation rescales each class
    /// once, this holds the classes to equal shares, so a class the graph reaches badly still gets its share.
    Sinkhorn,
}

/// Where the exact kNN search runs. Both places give the same neighbours (ties to the lower index), up to float
/// noise in the similarities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KnnOn {
    /// The stage's device when it is not the CPU backend, the CPU otherwise.
    #[default]
    Auto,
    /// The CPU cores (`relab_core::linalg::nearest_neighbours`), whatever the stage's device.
    Cpu,
    /// The stage's device (`relab_core::linalg::nearest_neighbours_on_device`), even when it is the CPU backend.
    Device,
}

/// Defaults are the original's (`docs/method.md` §3: k = 200, γ = 3, α = 0.99, 50 CG iterations, tolerance 1e-6,
/// PCA whitening on); the weights are the intended cosine ones. Each field's first doc paragraph is its help line in
/// `relab plugins describe`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct DiffusionParams {
    /// neighbours per sample in the graph (exact search; the sample itself excluded)
    #[param(default = 200, min = 1)]
    pub k: usize,
    /// power of the edge weights
    #[param(default = 3.0, above = 0.0)]
    pub gamma: f64,
    /// diffusion strength in (0, 1): solves (I − alpha·Wn) f = y
    #[param(default = 0.99)]
    pub alpha: f64,
    /// conjugate-gradient iterations at most (x0 = 0)
    #[param(default = 50, min = 1)]
    pub iterations: usize,
    /// stop a class's CG once its residual is below tolerance × its right-hand side's norm
    #[param(default = 1e-6, min = 0.0)]
    pub tolerance: f64,
    /// cosine: max(cos, 0)^gamma (intended); l2: (squared distance)^gamma (the released code)
    #[param(default = Weights::Cosine)]
    pub weights: Weights,
    /// PCA-whiten (full rank) between the two L2 normalisations, as the original
    #[param(default = true)]
    pub whiten: bool,
    /// where the exact kNN runs: auto (the stage's device unless it is the CPU backend), cpu, device (matmul +
    /// top-k on the stage's device); the neighbours are the same
    #[param(default = KnnOn::Auto)]
    pub knn: KnnOn,
    /// none: each row's argmax (the original); class_mass: divide each class's scores by its total over all samples
    /// first; sinkhorn: scale the scores to equal class masses (Sinkhorn-Knopp) first; both for classes of about
    /// equal size
    #[param(default = Balance::None)]
    pub balance: Balance,
    /// with balance: sinkhorn, the power the scores are raised to before the scaling
    #[param(default = 2.0, above = 0.0)]
    pub sinkhorn_power: f64,
}

impl DiffusionParams {
    /// Checks each value's range; the error names the key and what it accepts.
    pub fn check(&self) -> Result<(), ParamError> {
        // Counts and the other single-value ranges are declared above (`min = 1`, ...) and checked on parsing.
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(ParamError {
                path: vec!["alpha".into()],
                message: format!(
                    "must lie strictly between 0 and 1 (I − alpha·Wn is singular at 1), found {}",
                    self.alpha
                ),
                known_keys: vec![],
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relab_core::registry::parse_params;

    fn check_yaml(text: &str) -> Result<(), ParamError> {
        parse_params::<DiffusionParams>(&serde_yaml::from_str(text).unwrap())?.check()
    }

    #[test]
    fn defaults_are_the_originals() {
        let p = DiffusionParams::default();
        assert_eq!((p.k, p.gamma, p.alpha, p.iterations, p.tolerance), (200, 3.0, 0.99, 50, 1e-6));
        assert_eq!((p.weights, p.whiten, p.knn, p.balance), (Weights::Cosine, true, KnnOn::Auto, Balance::None));
        assert!(check_yaml("{}").is_ok());
        assert_eq!(
            parse_params::<DiffusionParams>(&serde_yaml::from_str("weights: l2").unwrap()).unwrap().weights,
            Weights::L2
        );
        assert_eq!(
            parse_params::<DiffusionParams>(&serde_yaml::from_str("balance: class_mass").unwrap()).unwrap().balance,
            Balance::ClassMass
        );
        for (text, on) in [("knn: auto", KnnOn::Auto), ("knn: cpu", KnnOn::Cpu), ("knn: device", KnnOn::Device)] {
            assert_eq!(parse_params::<DiffusionParams>(&serde_yaml::from_str(text).unwrap()).unwrap().knn, on);
        }
    }

    #[test]
    fn each_bad_value_is_reported_on_its_key() {
        for (yaml, key, words) in [
            ("k: 0", "k", "at least 1"),
            ("gamma: 0", "gamma", "positive"),
            ("alpha: 1.0", "alpha", "strictly between 0 and 1"),
            ("alpha: -0.5", "alpha", "strictly between 0 and 1"),
            ("iterations: 0", "iterations", "at least 1"),
            ("tolerance: -1e-3", "tolerance", "≥ 0"),
        ] {
            let e = check_yaml(yaml).unwrap_err();
            assert_eq!(e.path, vec![key.to_string()], "{yaml}");
            assert!(e.message.contains(words), "{yaml}: {}", e.message);
        }
        let e = check_yaml("weights: dot").unwrap_err();
        assert_eq!(e.path, vec!["weights".to_string()]);
        let e = check_yaml("knn: gpu").unwrap_err();
        assert_eq!(e.path, vec!["knn".to_string()]);
        assert!(["gpu", "auto", "cpu", "device"].iter().all(|w| e.message.contains(w)), "{}", e.message);
        let e = check_yaml("balance: yes").unwrap_err();
        assert_eq!(e.path, vec!["balance".to_string()]);
        let e = check_yaml("neighbours: 5").unwrap_err();
        assert_eq!(e.path, vec!["neighbours".to_string()]);
        assert!(e.known_keys.contains(&"k".to_string()));
    }
}
