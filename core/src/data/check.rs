//! `relab data check [NAME]`: for each dataset, where relab looked and what it found there, so a user can tell at
//! a glance which datasets an experiment could use on this machine.

use std::fmt;
use std::path::{Path, PathBuf};

use super::locate::{self, Found, KNOWN_DATASETS};
use super::miniimagenet;

/// The outcome for one dataset name.
#[derive(Debug, Clone)]
pub struct DatasetCheck {
    pub name: String,
    /// The folders searched, in order.
    pub looked: Vec<PathBuf>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Found(CheckFound),
    /// No folder searched holds the files; how to get them.
    Missing {
        how_to_get: String,
    },
    /// Files are there but unreadable, or the name is unknown: the error message.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFound {
    pub dir: PathBuf,
    pub format: String,
    pub train: usize,
    pub test: usize,
    pub classes: usize,
    /// Images per sample, e.g. `1×28×28`; empty where images were not decoded.
    pub shape: String,
}

/// Checks `name` (or every known dataset). IDX and CIFAR files are read in full, so corruption shows here;
/// miniImageNet's lists are read and every listed image checked to exist, without decoding 60,000 JPEGs.
pub fn check(name: Option<&str>, root: Option<&Path>) -> Vec<DatasetCheck> {
    let names: Vec<&str> = match name {
        Some(n) => vec![n],
        None => KNOWN_DATASETS.to_vec(),
    };
    names.into_iter().map(|n| check_one(n, root)).collect()
}

fn check_one(name: &str, root: Option<&Path>) -> DatasetCheck {
    if let Err(e) = locate::check_known(name) {
        return DatasetCheck { name: name.to_string(), looked: Vec::new(), outcome: Outcome::Failed(e.to_string()) };
    }
    let looked = locate::search_paths(name, root);
    let outcome = match looked.iter().find_map(|p| locate::probe(name, p)) {
        None => Outcome::Missing { how_to_get: locate::how_to_get(name) },
        Some(found) => inspect(&found).map_or_else(Outcome::Failed, Outcome::Found),
    };
    DatasetCheck { name: name.to_string(), looked, outcome }
}

fn inspect(found: &Found) -> Result<CheckFound, String> {
    let dir = found.dir().to_path_buf();
    let format = found.format().to_string();
    if let Found::MiniImageNet(d) = found {
        let entries = miniimagenet::read_entries(d).map_err(|e| e.to_string())?;
        let images = d.join("images");
        let missing: Vec<&str> =
            entries.iter().map(|e| e.filename.as_str()).filter(|f| !images.join(f).is_file()).collect();
        if let Some(first) = missing.first() {
            return Err(format!("{} listed images are missing from {}, e.g. {first}", missing.len(), images.display()));
        }
        let (train, test) = miniimagenet::split(entries.len());
        let mut classes: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
        classes.sort_unstable();
        classes.dedup();
        return Ok(CheckFound {
            dir,
            format,
            train: train.len(),
            test: test.len(),
            classes: classes.len(),
            shape: String::new(),
        });
    }
    let d = found.read().map_err(|e| e.to_string())?;
    Ok(CheckFound {
        dir,
        format,
        train: d.train.len(),
        test: d.test.len(),
        classes: d.num_classes,
        shape: format!("{}×{}×{}", d.train.channels, d.train.height, d.train.width),
    })
}

impl fmt::Display for DatasetCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let looked: Vec<String> = self.looked.iter().map(|p| p.display().to_string()).collect();
        match &self.outcome {
            Outcome::Found(c) => {
                write!(
                    f,
                    "{}: {} in {}: {} train + {} test images",
                    self.name,
                    c.format,
                    c.dir.display(),
                    c.train,
                    c.test
                )?;
                if !c.shape.is_empty() {
                    write!(f, " of {}", c.shape)?;
                }
                writeln!(f, ", {} classes", c.classes)
            }
            Outcome::Missing { how_to_get } => {
                writeln!(f, "{}: not found (searched {})", self.name, looked.join(", "))?;
                writeln!(f, "  {how_to_get}")?;
                writeln!(f, "  Then put them in one of those folders, or point $RELAB_DATA or `dataset.root` at them.")
            }
            Outcome::Failed(e) => {
                writeln!(f, "{}: error: {}", self.name, e.replace('\n', "\n  "))?;
                if !looked.is_empty() {
                    writeln!(f, "  searched: {}", looked.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_found_and_missing_datasets() {
        let dir = tempfile::tempdir().unwrap();
        super::super::mnist::tests::write_tiny(dir.path(), 4, 2, false);
        let r = check(Some("mnist"), Some(dir.path()));
        assert_eq!(r.len(), 1);
        let Outcome::Found(found) = &r[0].outcome else { panic!("{}", r[0]) };
        assert_eq!((found.train, found.test, found.classes, found.format.as_str()), (4, 2, 10, "IDX files"));
        let text = r[0].to_string();
        assert!(text.starts_with("mnist: IDX files in"), "{text}");
        assert!(text.contains("4 train + 2 test images of 1×2×3, 10 classes"), "{text}");

        let r = check(Some("cifar100"), Some(dir.path()));
        let text = r[0].to_string();
        assert!(matches!(r[0].outcome, Outcome::Missing { .. }));
        assert!(
            text.starts_with("cifar100: not found (searched ") && text.contains("cifar-100-python.tar.gz"),
            "{text}"
        );

        let all = check(None, Some(dir.path()));
        assert_eq!(all.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), KNOWN_DATASETS.to_vec());
        // Both IDX datasets share a format, so this folder satisfies both names.
        assert!(matches!(all[0].outcome, Outcome::Found(_)) && matches!(all[1].outcome, Outcome::Found(_)));
    }

    #[test]
    fn corrupt_files_and_unknown_names_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        super::super::mnist::tests::write_tiny(dir.path(), 4, 2, false);
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), b"\0\0\x08\x03").unwrap();
        let r = check(Some("mnist"), Some(dir.path()));
        assert!(matches!(&r[0].outcome, Outcome::Failed(e) if e.contains("t10k-images-idx3-ubyte")), "{}", r[0]);
        assert!(r[0].to_string().starts_with("mnist: error: "), "{}", r[0]);
        let r = check(Some("imagenet"), None);
        assert!(r[0].looked.is_empty());
        assert!(r[0].to_string().contains("relab knows no dataset"));
    }

    #[test]
    fn miniimagenet_is_counted_without_decoding() {
        let dir = tempfile::tempdir().unwrap();
        super::super::miniimagenet::tests::write_tiny(dir.path(), &["a", "b", "c"], 2);
        let r = check(Some("miniimagenet"), Some(dir.path()));
        let Outcome::Found(found) = &r[0].outcome else { panic!("{}", r[0]) };
        assert_eq!((found.train, found.test, found.classes), (5, 1, 3));
        std::fs::remove_file(dir.path().join("images/b00000001.png")).unwrap();
        let r = check(Some("miniimagenet"), Some(dir.path()));
        assert!(matches!(&r[0].outcome, Outcome::Failed(e) if e.contains("b00000001.png")), "{}", r[0]);
    }
}
