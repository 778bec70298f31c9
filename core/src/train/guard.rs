//! The per-step NaN guard: read a loss tensor's value once and stop the stage with [`Error::NonFinite`] (through
//! [`StageContext::check_finite`]) when it is NaN or infinite, so the last good checkpoint stays the latest.
//!
//! [`Error::NonFinite`]: crate::Error::NonFinite
use std::fmt::Display;

use burn::tensor::Tensor;

use crate::Result;
use crate::component::StageContext;

/// The value of a one-element `loss` (pulled from the device once), or `Error::NonFinite` naming `what` and `at`
/// (e.g. `"epoch 3 step 120"`, formatted only on failure).
pub fn finite_loss(ctx: &StageContext, what: &str, loss: &Tensor<1>, at: impl Display) -> Result<f64> {
    let value = scalar(loss);
    if value.is_finite() {
        return Ok(value);
    }
    ctx.check_finite(what, value, &at.to_string())?;
    Ok(value)
}

/// The value of a one-element tensor as `f64`.
pub fn scalar(t: &Tensor<1>) -> f64 {
    assert_eq!(t.dims(), [1], "a loss is a one-element tensor");
    t.clone().into_scalar::<f32>() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::component::{MetricsSink, StageKind};
    use burn::tensor::Device;

    #[test]
    fn finite_passes_and_nan_names_where() {
        let dir = tempfile::tempdir().unwrap();
        let sink = MetricsSink::open(&dir.path().join("metrics.jsonl")).unwrap();
        let ctx = StageContext::new(StageKind::Train, Device::flex(), "cpu", 1, dir.path().to_path_buf(), sink, false);
        let device = Device::flex();
        let ok = Tensor::<1>::from_floats([0.25], &device);
        assert_eq!(finite_loss(&ctx, "loss", &ok, "step 1").unwrap(), 0.25);
        let bad = Tensor::<1>::from_floats([0.0], &device).log().neg();
        let err = finite_loss(&ctx, "loss", &bad, format_args!("epoch {} step {}", 2, 7)).unwrap_err();
        assert!(matches!(&err, Error::NonFinite { at, .. } if at == "epoch 2 step 7"), "{err}");
        assert!(err.to_string().contains("loss = inf"), "{err}");
        let nan = Tensor::<1>::from_floats([f32::NAN], &device);
        assert!(finite_loss(&ctx, "loss", &nan, 0).is_err());
    }
}
