//! `pca-features`: the encoder is a PCA of the training images' normalised pixels, fitted on a seeded draw of them,
//! optionally whitened. Labels are never read.
//!
//! The template for an SSL method: parameters (declared once), registration, the method, and its [`Encoder`], which
//! saves itself and is loaded back from a cached stage. `relab new pretrain NAME` copies this file with the names
//! replaced.

use std::fs;
use std::path::Path;

use relab_core::artifact::Features;
use relab_core::artifact::atomic::write_json;
use relab_core::component::{Encoder, FeatureOutput, SslMethod, StageContext};
use relab_core::data::{Dataset, ImageSet};
use relab_core::linalg::Pca;
use relab_core::rand::seq::index::sample;
use relab_core::registry::{ParamError, PluginInfo};
use relab_core::serde::{Deserialize, Serialize};
use relab_core::{Error, Result};

/// The YAML parameters; each field's first doc paragraph is its help line in `relab plugins describe`.
#[relab_core::params]
#[derive(Debug, Clone, PartialEq)]
pub struct PcaFeaturesParams {
    /// principal components kept: the length of a feature vector
    #[param(default = 64, min = 1)]
    pub components: usize,
    /// training images the components are fitted on, a seeded random draw; null = all
    #[param(default = Some(10_000), min = 2)]
    pub fit_images: Option<usize>,
    /// scale every component to unit variance over the fitted images
    #[param(default = true)]
    pub whiten: bool,
}

/// The method, built from its parameters by the registry.
#[derive(Debug, Clone)]
pub struct PcaFeatures {
    params: PcaFeaturesParams,
}

impl PluginInfo for PcaFeatures {
    const NAME: &'static str = "pca-features";
    const SUMMARY: &'static str = "PCA of the normalised training pixels as the encoder (SSL-method template)";
    type Params = PcaFeaturesParams;

    fn from_params(params: PcaFeaturesParams) -> Result<Self, ParamError> {
        Ok(PcaFeatures { params })
    }
}

relab_core::submit_plugin!(pretrain, PcaFeatures);

impl SslMethod for PcaFeatures {
    fn pretrain(&mut self, ctx: &mut StageContext, data: &Dataset) -> Result<Box<dyn Encoder>> {
        let p = &self.params;
        let n = data.train.len();
        let mut chosen: Vec<usize> = match p.fit_images {
            Some(k) if k < n => sample(&mut ctx.rng, n, k).into_vec(),
            _ => (0..n).collect(),
        };
        chosen.sort_unstable();
        let images = data.train.select(&chosen);
        let x = normalised(&images, &data.mean, &data.std);
        let pca = Pca::fit(&x, images.len(), images.image_len(), p.components)
            .map_err(|e| Error::stage("pretrain", format!("pca-features: {e}")))?;
        ctx.set_summary("explained_variance", pca.explained_variance_ratio());
        let record = PcaRecord::new(&pca, p.whiten, &data.mean, &data.std);
        Ok(Box::new(PcaEncoder { record, pca }))
    }

    fn load_encoder(&self, _ctx: &mut StageContext, dir: &Path) -> Result<Box<dyn Encoder>> {
        let path = dir.join(RECORD_FILE);
        let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        let record: PcaRecord = relab_core::serde_json::from_str(&text)
            .map_err(|e| Error::format(&path, format!("not a pca-features encoder: {e}")))?;
        let pca = record.pca();
        Ok(Box::new(PcaEncoder { record, pca }))
    }
}

const RECORD_FILE: &str = "pca.json";

/// What the encoder saves: the fitted PCA (floats written exactly) and the normalisation it was fitted after.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(crate = "relab_core::serde")]
struct PcaRecord {
    dim: usize,
    mean: Vec<f64>,
    axes: Vec<f64>,
    variances: Vec<f64>,
    total_variance: f64,
    whiten: bool,
    pixel_mean: Vec<f32>,
    pixel_std: Vec<f32>,
}

impl PcaRecord {
    fn new(pca: &Pca, whiten: bool, pixel_mean: &[f32], pixel_std: &[f32]) -> Self {
        PcaRecord {
            dim: pca.dim,
            mean: pca.mean.clone(),
            axes: pca.axes.clone(),
            variances: pca.variances.clone(),
            total_variance: pca.total_variance,
            whiten,
            pixel_mean: pixel_mean.to_vec(),
            pixel_std: pixel_std.to_vec(),
        }
    }

    fn pca(&self) -> Pca {
        let (mean, axes, variances) = (self.mean.clone(), self.axes.clone(), self.variances.clone());
        Pca { dim: self.dim, mean, axes, variances, total_variance: self.total_variance }
    }
}

/// The fitted PCA as an encoder.
struct PcaEncoder {
    record: PcaRecord,
    pca: Pca,
}

impl Encoder for PcaEncoder {
    fn feature_dim(&self) -> usize {
        self.pca.components()
    }

    fn extract(&self, _ctx: &mut StageContext, images: &ImageSet, output: FeatureOutput) -> Result<Features> {
        if output == FeatureOutput::Head {
            return Err(Error::stage("features", "pca-features has one output, `default` (= `pooled`); no `head`"));
        }
        if images.image_len() != self.pca.dim {
            return Err(Error::stage(
                "features",
                format!(
                    "pca-features was fitted on images of {} values, these have {}",
                    self.pca.dim,
                    images.image_len()
                ),
            ));
        }
        let x = normalised(images, &self.record.pixel_mean, &self.record.pixel_std);
        let values =
            if self.record.whiten { self.pca.whiten(&x, images.len()) } else { self.pca.project(&x, images.len()) };
        Ok(Features::new(images.len(), self.feature_dim(), values))
    }

    fn save(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        write_json(&dir.join(RECORD_FILE), &self.record)
    }
}

/// Pixels scaled to `[0, 1]` and normalised per channel, one row per image.
fn normalised(images: &ImageSet, mean: &[f32], std: &[f32]) -> Vec<f32> {
    let plane = images.height * images.width;
    let mut values = Vec::with_capacity(images.len() * images.image_len());
    for i in 0..images.len() {
        values.extend(
            images.image(i).iter().enumerate().map(|(j, &p)| (p as f32 / 255.0 - mean[j / plane]) / std[j / plane]),
        );
    }
    values
}
