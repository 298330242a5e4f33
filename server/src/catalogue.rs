//! The certified catalogue: the makes and models of consoles that may verify.
//!
//! A default ships with the server (`server/catalogue.json`: `Logitech Tap` certified, `Generic
//! NUC` not, among others); `otpfleet serve --catalogue FILE` replaces it with a JSON array of
//! `{"make", "model", "certified"}` objects.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The catalogue shipped with the server.
pub const DEFAULT_CATALOGUE_JSON: &str = include_str!("../catalogue.json");

/// One make and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    pub make: String,
    pub model: String,
    pub certified: bool,
}

/// What the catalogue says about a console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certification {
    Certified,
    /// Listed as not certified, or not listed at all.
    NotCertified,
}

/// Makes and models, matched case-insensitively.
#[derive(Debug, Clone)]
pub struct Catalogue {
    entries: Vec<CatalogueEntry>,
    by_key: BTreeMap<(String, String), bool>,
}

/// Why a catalogue file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("not a JSON array of {{\"make\", \"model\", \"certified\"}} objects: {0}")]
    Json(#[from] serde_json::Error),
    #[error("entry {index}: make and model must not be empty")]
    Empty { index: usize },
    #[error("entry {index}: {make} {model} is listed twice")]
    Duplicate {
        index: usize,
        make: String,
        model: String,
    },
    #[error("the catalogue is empty: list at least one make and model")]
    NoEntries,
}

impl Catalogue {
    /// Parses a catalogue file's text.
    pub fn from_json(text: &str) -> Result<Catalogue, CatalogueError> {
        let entries: Vec<CatalogueEntry> = serde_json::from_str(text)?;
        if entries.is_empty() {
            return Err(CatalogueError::NoEntries);
        }
        let mut by_key = BTreeMap::new();
        for (i, e) in entries.iter().enumerate() {
            if e.make.trim().is_empty() || e.model.trim().is_empty() {
                return Err(CatalogueError::Empty { index: i + 1 });
            }
            if by_key.insert(key(&e.make, &e.model), e.certified).is_some() {
                return Err(CatalogueError::Duplicate {
                    index: i + 1,
                    make: e.make.clone(),
                    model: e.model.clone(),
                });
            }
        }
        Ok(Catalogue { entries, by_key })
    }

    /// The catalogue shipped with the server.
    pub fn builtin() -> Catalogue {
        Catalogue::from_json(DEFAULT_CATALOGUE_JSON).expect("the shipped catalogue parses")
    }

    pub fn certification(&self, make: &str, model: &str) -> Certification {
        match self.by_key.get(&key(make, model)) {
            Some(true) => Certification::Certified,
            _ => Certification::NotCertified,
        }
    }

    pub fn entries(&self) -> &[CatalogueEntry] {
        &self.entries
    }
}

fn key(make: &str, model: &str) -> (String, String) {
    (make.trim().to_lowercase(), model.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_entries_outside_checks_rely_on() {
        let c = Catalogue::builtin();
        assert_eq!(c.certification("Logitech", "Tap"), Certification::Certified);
        assert_eq!(
            c.certification("logitech", " tap "),
            Certification::Certified
        );
        assert_eq!(
            c.certification("Generic", "NUC"),
            Certification::NotCertified
        );
        assert_eq!(c.certification("Acme", "Box"), Certification::NotCertified);
    }

    #[test]
    fn refuses_bad_files_with_the_reason() {
        assert!(matches!(
            Catalogue::from_json("{}"),
            Err(CatalogueError::Json(_))
        ));
        assert!(matches!(
            Catalogue::from_json("[]"),
            Err(CatalogueError::NoEntries)
        ));
        let dup = r#"[{"make":"A","model":"B","certified":true},{"make":"a","model":"b","certified":false}]"#;
        assert!(matches!(
            Catalogue::from_json(dup),
            Err(CatalogueError::Duplicate { index: 2, .. })
        ));
    }
}
