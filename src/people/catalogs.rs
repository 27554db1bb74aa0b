//! The People catalogs (spec §2.1.2, A-10): person relations, marital
//! statuses, nationalities (144 = México) and the 32 states of Mexico, from
//! a seed file (`config/catalogs.toml`, compiled in).

use serde::{Deserialize, Serialize};

const SEED: &str = include_str!("../../config/catalogs.toml");

/// One element: `{id, name}`, and for states and countries their code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogItem {
    pub id: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catalog {
    PersonRelations,
    MaritalStatuses,
    Nationalities,
    States,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogs {
    pub person_relations: Vec<CatalogItem>,
    pub marital_statuses: Vec<CatalogItem>,
    pub nationalities: Vec<CatalogItem>,
    pub states: Vec<CatalogItem>,
}

impl Catalogs {
    /// The compiled-in seed, or the file `path` of the same layout.
    pub fn load(path: Option<&std::path::Path>) -> Result<Catalogs, String> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|e| format!("catalogs {}: {e}", p.display()))?,
            None => SEED.to_string(),
        };
        let c: Catalogs = toml::from_str(&text).map_err(|e| format!("catalogs: {e}"))?;
        for (name, items) in [
            ("person_relations", &c.person_relations),
            ("marital_statuses", &c.marital_statuses),
            ("nationalities", &c.nationalities),
            ("states", &c.states),
        ] {
            let mut ids: Vec<i64> = items.iter().map(|i| i.id).collect();
            ids.sort_unstable();
            if ids.windows(2).any(|w| w[0] == w[1]) {
                return Err(format!("catalogs: {name} has a repeated id"));
            }
        }
        Ok(c)
    }

    pub fn items(&self, catalog: Catalog) -> &[CatalogItem] {
        match catalog {
            Catalog::PersonRelations => &self.person_relations,
            Catalog::MaritalStatuses => &self.marital_statuses,
            Catalog::Nationalities => &self.nationalities,
            Catalog::States => &self.states,
        }
    }

    pub fn get(&self, catalog: Catalog, id: i64) -> Option<&CatalogItem> {
        self.items(catalog).iter().find(|i| i.id == id)
    }

    /// The id of the state whose CURP code is `code`.
    pub fn state_by_code(&self, code: &str) -> Option<i64> {
        self.states.iter().find(|s| s.code.as_deref() == Some(code)).map(|s| s.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_has_real_contents() {
        let c = Catalogs::load(None).expect("seed parses");
        assert_eq!(c.get(Catalog::Nationalities, 144).map(|i| i.name.as_str()), Some("México"));
        assert_eq!(c.states.len(), 32);
        assert_eq!(
            c.state_by_code("DF").and_then(|id| c.get(Catalog::States, id)).map(|s| s.name.as_str()),
            Some("Ciudad de México")
        );
        assert!(c.state_by_code("NE").is_none(), "born abroad is not a state");
        assert!(!c.marital_statuses.is_empty() && !c.person_relations.is_empty());
    }
}
