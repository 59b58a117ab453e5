//! Flavors: the sizes an instance can have. Nova's five defaults are always present;
//! operators add custom ones with ephemeral and swap disks. Pure data and checks.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flavor {
    pub name: String,
    pub vcpus: u32,
    pub ram_mb: u32,
    pub disk_gb: u32,
    #[serde(default)]
    pub ephemeral_gb: u32,
    #[serde(default)]
    pub swap_mb: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlavorError {
    #[error(
        "flavor name `{0}` is invalid: use 1 to 64 characters of letters, digits, `.`, `-` and `_`"
    )]
    Name(String),
    #[error("flavor {name}: {field} must be between {min} and {max}, got {value}")]
    Range {
        name: String,
        field: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
}

/// Nova's default flavors (name, vCPUs, RAM MiB, root disk GB).
pub const DEFAULTS: [(&str, u32, u32, u32); 5] = [
    ("m1.tiny", 1, 512, 1),
    ("m1.small", 1, 2048, 20),
    ("m1.medium", 2, 4096, 40),
    ("m1.large", 4, 8192, 80),
    ("m1.xlarge", 8, 16384, 160),
];

impl Flavor {
    pub fn defaults() -> Vec<Flavor> {
        DEFAULTS
            .iter()
            .map(|&(name, vcpus, ram_mb, disk_gb)| Flavor {
                name: name.to_owned(),
                vcpus,
                ram_mb,
                disk_gb,
                ephemeral_gb: 0,
                swap_mb: 0,
            })
            .collect()
    }

    /// Checks a custom flavor; bounds keep QEMU arguments and disk sizes sane.
    pub fn validate(&self) -> Result<(), FlavorError> {
        let ok_name = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok_name {
            return Err(FlavorError::Name(self.name.clone()));
        }
        let checks = [
            ("vcpus", self.vcpus, 1, 64),
            ("ram", self.ram_mb, 16, 1 << 20),
            ("disk", self.disk_gb, 0, 65536),
            ("ephemeral", self.ephemeral_gb, 0, 65536),
            ("swap", self.swap_mb, 0, 1 << 20),
        ];
        for (field, value, min, max) in checks {
            if value < min || value > max {
                return Err(FlavorError::Range {
                    name: self.name.clone(),
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_novas_and_valid() {
        let d = Flavor::defaults();
        assert_eq!(d.len(), 5);
        assert!(d.iter().all(|f| f.validate().is_ok()));
        assert_eq!(
            (d[1].name.as_str(), d[1].ram_mb, d[1].disk_gb),
            ("m1.small", 2048, 20)
        );
    }

    #[test]
    fn bad_flavors_name_the_problem() {
        let f = Flavor {
            name: "x y".into(),
            vcpus: 1,
            ram_mb: 64,
            disk_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
        };
        assert!(matches!(f.validate(), Err(FlavorError::Name(_))));
        let f = Flavor {
            name: "x".into(),
            vcpus: 0,
            ..f
        };
        assert_eq!(
            f.validate().map_err(|e| e.to_string()),
            Err("flavor x: vcpus must be between 1 and 64, got 0".into())
        );
    }
}
