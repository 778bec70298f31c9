//! A list of augmentations as experiments and plugins write it in YAML:
//!
//! ```yaml
//! augment:
//!   - crop: {padding: 4, mode: reflect}
//!   - flip
//!   - color_jitter: {brightness: 0.4, p: 0.8}
//! ```
//!
//! An item is an operation's name alone (its defaults) or a one-key map from the name to its parameters; unknown
//! names and unknown parameters are errors that name the known ones.

use std::fmt;

use rand::Rng;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::center_crop::CenterCrop;
use super::color_jitter::ColorJitter;
use super::crop::{PadMode, RandomCrop};
use super::cutout::Cutout;
use super::flip::Flip;
use super::grayscale::RandomGrayscale;
use super::image::Image;
use super::randaugment::RandAugment;
use super::resize::Resize;
use super::resized_crop::RandomResizedCrop;

/// One augmentation step.
#[derive(Debug, Clone, PartialEq)]
pub enum Augment {
    Crop(RandomCrop),
    Flip(Flip),
    ResizedCrop(RandomResizedCrop),
    ColorJitter(ColorJitter),
    Grayscale(RandomGrayscale),
    CenterCrop(CenterCrop),
    Resize(Resize),
    Cutout(Cutout),
    RandAugment(RandAugment),
}

/// The names an item may use.
pub const AUGMENT_NAMES: &[&str] =
    &["crop", "flip", "resized_crop", "color_jitter", "grayscale", "center_crop", "resize", "cutout", "randaugment"];

impl Augment {
    pub fn name(&self) -> &'static str {
        match self {
            Augment::Crop(_) => "crop",
            Augment::Flip(_) => "flip",
            Augment::ResizedCrop(_) => "resized_crop",
            Augment::ColorJitter(_) => "color_jitter",
            Augment::Grayscale(_) => "grayscale",
            Augment::CenterCrop(_) => "center_crop",
            Augment::Resize(_) => "resize",
            Augment::Cutout(_) => "cutout",
            Augment::RandAugment(_) => "randaugment",
        }
    }

    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        match self {
            Augment::Crop(op) => op.apply(img, rng),
            Augment::Flip(op) => op.apply(img, rng),
            Augment::ResizedCrop(op) => op.apply(img, rng),
            Augment::ColorJitter(op) => op.apply(img, rng),
            Augment::Grayscale(op) => op.apply(img, rng),
            Augment::CenterCrop(op) => op.apply(img),
            Augment::Resize(op) => op.apply(img),
            Augment::Cutout(op) => op.apply(img, rng),
            Augment::RandAugment(op) => op.apply(img, rng),
        }
    }

    /// The output size for an `h × w` input (channels never change), or why this step cannot take it.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize), String> {
        match self {
            Augment::Crop(op) => op.output_size(h, w),
            Augment::ResizedCrop(op) => Ok(op.output_size(h, w)),
            Augment::CenterCrop(op) => Ok((op.size, op.size)),
            Augment::Resize(op) => Ok(op.output_size(h, w)),
            Augment::Flip(_)
            | Augment::ColorJitter(_)
            | Augment::Grayscale(_)
            | Augment::Cutout(_)
            | Augment::RandAugment(_) => Ok((h, w)),
        }
    }

    /// Parameter ranges (probabilities in [0, 1], sizes ≥ 1, ...).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Augment::Crop(op) => op.validate(),
            Augment::Flip(op) => op.validate(),
            Augment::ResizedCrop(op) => op.validate(),
            Augment::ColorJitter(op) => op.validate(),
            Augment::Grayscale(op) => op.validate(),
            Augment::CenterCrop(op) => op.validate(),
            Augment::Resize(op) => op.validate(),
            Augment::Cutout(op) => op.validate(),
            Augment::RandAugment(op) => op.validate(),
        }
    }
}

/// Augmentations applied in order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pipeline(pub Vec<Augment>);

impl Pipeline {
    pub fn new(steps: Vec<Augment>) -> Self {
        Pipeline(steps)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn apply<R: Rng + ?Sized>(&self, img: Image, rng: &mut R) -> Image {
        self.0.iter().fold(img, |img, step| step.apply(img, rng))
    }

    /// The size of every output for `h × w` inputs, or the first step that cannot take its input.
    pub fn output_size(&self, h: usize, w: usize) -> Result<(usize, usize), String> {
        self.0.iter().try_fold((h, w), |(h, w), step| step.output_size(h, w))
    }

    /// The usual views of contrastive SSL methods (iMix's in docs/method.md §2.2): random resized crop to `size`,
    /// flip, colour jitter (0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale with p 0.2.
    pub fn contrastive_views(size: usize) -> Self {
        Pipeline(vec![
            Augment::ResizedCrop(RandomResizedCrop { size: Some(size), ..Default::default() }),
            Augment::Flip(Flip::default()),
            Augment::ColorJitter(ColorJitter::default()),
            Augment::Grayscale(RandomGrayscale::default()),
        ])
    }

    /// The weak augmentation of phase 2b and the semi-supervised trainers: pad-and-crop, then flip.
    pub fn crop_flip(padding: usize, mode: PadMode) -> Self {
        Pipeline(vec![Augment::Crop(RandomCrop { size: None, padding, mode }), Augment::Flip(Flip::default())])
    }
}

impl Serialize for Augment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Augment::Crop(p) => map.serialize_entry("crop", p)?,
            Augment::Flip(p) => map.serialize_entry("flip", p)?,
            Augment::ResizedCrop(p) => map.serialize_entry("resized_crop", p)?,
            Augment::ColorJitter(p) => map.serialize_entry("color_jitter", p)?,
            Augment::Grayscale(p) => map.serialize_entry("grayscale", p)?,
            Augment::CenterCrop(p) => map.serialize_entry("center_crop", p)?,
            Augment::Resize(p) => map.serialize_entry("resize", p)?,
            Augment::Cutout(p) => map.serialize_entry("cutout", p)?,
            Augment::RandAugment(p) => map.serialize_entry("randaugment", p)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Augment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AugmentVisitor)
    }
}

struct AugmentVisitor;

impl<'de> Visitor<'de> for AugmentVisitor {
    type Value = Augment;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "an augmentation: a name (`flip`) or a one-key map (`crop: {{padding: 4}}`), one of {}",
            AUGMENT_NAMES.join(", ")
        )
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Augment, E> {
        let aug = match name {
            "crop" => Augment::Crop(RandomCrop::default()),
            "flip" => Augment::Flip(Flip::default()),
            "resized_crop" => Augment::ResizedCrop(RandomResizedCrop::default()),
            "color_jitter" => Augment::ColorJitter(ColorJitter::default()),
            "grayscale" => Augment::Grayscale(RandomGrayscale::default()),
            "cutout" => Augment::Cutout(Cutout::default()),
            "randaugment" => Augment::RandAugment(RandAugment::default()),
            "center_crop" | "resize" => {
                return Err(E::custom(format!("`{name}` needs a size: write `{name}: {{size: 32}}`")));
            }
            other => return Err(E::unknown_variant(other, AUGMENT_NAMES)),
        };
        Ok(aug)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Augment, A::Error> {
        let name: String =
            map.next_key()?.ok_or_else(|| de::Error::custom("an empty map is not an augmentation; name one"))?;
        // `flip:` with nothing after it (null) means the defaults, like `flip` alone.
        fn or_default<T: Default>(v: Option<T>) -> T {
            v.unwrap_or_default()
        }
        let aug = match name.as_str() {
            "crop" => Augment::Crop(or_default(map.next_value()?)),
            "flip" => Augment::Flip(or_default(map.next_value()?)),
            "resized_crop" => Augment::ResizedCrop(or_default(map.next_value()?)),
            "color_jitter" => Augment::ColorJitter(or_default(map.next_value()?)),
            "grayscale" => Augment::Grayscale(or_default(map.next_value()?)),
            "center_crop" => Augment::CenterCrop(map.next_value()?),
            "resize" => Augment::Resize(map.next_value()?),
            "cutout" => Augment::Cutout(or_default(map.next_value()?)),
            "randaugment" => Augment::RandAugment(or_default(map.next_value()?)),
            other => return Err(de::Error::unknown_variant(other, AUGMENT_NAMES)),
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "one augmentation per list item: `{name}` and `{extra}` are in the same map (start a new item with `-`)"
            )));
        }
        aug.validate().map_err(de::Error::custom)?;
        Ok(aug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn parse(yaml: &str) -> Result<Pipeline, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn names_and_maps_parse_with_defaults() {
        let p = parse("[ {crop: {padding: 4, mode: reflect}}, flip, {color_jitter: {hue: 0.2}}, {grayscale: }, {center_crop: {size: 8}}, {cutout: {size: 4}}, cutout, randaugment, {randaugment: {n: 3, cutout: false}} ]").unwrap();
        assert_eq!(
            p.0,
            vec![
                Augment::Crop(RandomCrop { size: None, padding: 4, mode: PadMode::Reflect }),
                Augment::Flip(Flip { p: 0.5 }),
                Augment::ColorJitter(ColorJitter { hue: 0.2, ..Default::default() }),
                Augment::Grayscale(RandomGrayscale { p: 0.2 }),
                Augment::CenterCrop(CenterCrop { size: 8 }),
                Augment::Cutout(Cutout { size: 4, p: 1.0, value: 0.0 }),
                Augment::Cutout(Cutout::default()),
                Augment::RandAugment(RandAugment { n: 2, p: 0.5, cutout: true }),
                Augment::RandAugment(RandAugment { n: 3, p: 0.5, cutout: false }),
            ]
        );
        let block = "- resized_crop: {size: 32}\n- flip: {p: 0.3}\n- color_jitter\n";
        let p = parse(block).unwrap();
        assert_eq!(p.0.len(), 3);
        assert_eq!(p.output_size(28, 28).unwrap(), (32, 32));
    }

    #[test]
    fn round_trips_through_yaml_and_json() {
        let p = Pipeline::contrastive_views(32);
        let yaml = serde_yaml::to_string(&p).unwrap();
        assert_eq!(parse(&yaml).unwrap(), p, "{yaml}");
        let json = serde_json::to_string(&Pipeline::crop_flip(4, PadMode::Zero)).unwrap();
        assert_eq!(json, r#"[{"crop":{"padding":4,"mode":"zero"}},{"flip":{"p":0.5}}]"#);
        assert_eq!(serde_json::from_str::<Pipeline>(&json).unwrap(), Pipeline::crop_flip(4, PadMode::Zero));
    }

    #[test]
    fn unknown_names_fields_and_bad_values_are_errors() {
        let e = parse("[blur]").unwrap_err();
        assert!(e.contains("blur") && e.contains("resized_crop"), "{e}");
        let e = parse("[{crop: {pading: 4}}]").unwrap_err();
        assert!(e.contains("pading"), "{e}");
        let e = parse("[{flip: {p: 2}}]").unwrap_err();
        assert!(e.contains("probability"), "{e}");
        let e = parse("[center_crop]").unwrap_err();
        assert!(e.contains("needs a size"), "{e}");
        let e = parse("[{crop: {}, flip: {}}]").unwrap_err();
        assert!(e.contains("one augmentation per list item"), "{e}");
        let e = parse("[{cutout: {size: 0}}]").unwrap_err();
        assert!(e.contains("cutout: size"), "{e}");
        let e = parse("[{randaugment: {n: 0}}]").unwrap_err();
        assert!(e.contains("randaugment: n"), "{e}");
        let e = parse("[{randaugment: {m: 10}}]").unwrap_err();
        assert!(e.contains("`m`"), "{e}");
        let e = parse("[{crop: {mode: wrap}}]").unwrap_err();
        assert!(e.contains("wrap"), "{e}");
    }

    #[test]
    fn pipeline_sizes_and_application() {
        let p = parse("[{crop: {size: 40, padding: 2}}]").unwrap();
        assert!(p.output_size(32, 32).unwrap_err().contains("does not fit"));
        let p = Pipeline::contrastive_views(8);
        let img = Image::new(3, 12, 12, (0..432).map(|v| (v % 256) as f32 / 255.0).collect());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let out = p.apply(img, &mut rng);
        assert_eq!((out.c, out.h, out.w), (3, 8, 8));
        assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}
