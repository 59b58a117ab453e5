//! The metadata versions Nova serves, in order, and the `latest` alias.

use std::fmt;
use std::str::FromStr;

macro_rules! versions {
    ($name:ident, $doc:literal, [$($var:ident = $s:literal),+ $(,)?]) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($var),+ }

        impl $name {
            /// Every version, oldest first.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownVersion;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err(UnknownVersion(s.to_owned())),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

versions!(
    OpenStackVersion,
    "A dated version of the `/openstack` tree.",
    [
        V2012_08_10 = "2012-08-10",
        V2013_04_04 = "2013-04-04",
        V2013_10_17 = "2013-10-17",
        V2015_10_15 = "2015-10-15",
        V2016_06_30 = "2016-06-30",
        V2016_10_06 = "2016-10-06",
        V2017_02_22 = "2017-02-22",
        V2018_08_27 = "2018-08-27",
        V2020_10_14 = "2020-10-14",
        V2025_04_04 = "2025-04-04",
    ]
);

versions!(
    Ec2Version,
    "A version of the EC2-compatible tree.",
    [
        V1_0 = "1.0",
        V2007_01_19 = "2007-01-19",
        V2007_03_01 = "2007-03-01",
        V2007_08_29 = "2007-08-29",
        V2007_10_10 = "2007-10-10",
        V2007_12_15 = "2007-12-15",
        V2008_02_01 = "2008-02-01",
        V2008_09_01 = "2008-09-01",
        V2009_04_04 = "2009-04-04",
    ]
);

/// A version name that is neither known nor `latest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown metadata version `{0}`")]
pub struct UnknownVersion(pub String);

/// A version of either tree, for settings that name both (like Nova's skip list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnyVersion {
    OpenStack(OpenStackVersion),
    Ec2(Ec2Version),
}

impl FromStr for AnyVersion {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse()
            .map(AnyVersion::OpenStack)
            .or_else(|_| s.parse().map(AnyVersion::Ec2))
    }
}

impl fmt::Display for AnyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyVersion::OpenStack(v) => v.fmt(f),
            AnyVersion::Ec2(v) => v.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ordered_and_round_trip() {
        assert!(OpenStackVersion::ALL
            .windows(2)
            .all(|w| w[0] < w[1] && w[0].as_str() < w[1].as_str()));
        for v in OpenStackVersion::ALL {
            assert_eq!(v.as_str().parse::<OpenStackVersion>(), Ok(*v));
        }
        for v in Ec2Version::ALL {
            assert_eq!(v.as_str().parse::<Ec2Version>(), Ok(*v));
        }
        assert_eq!(OpenStackVersion::ALL.len(), 10);
        assert_eq!(Ec2Version::ALL.len(), 9);
        assert!("latest".parse::<AnyVersion>().is_err());
        assert_eq!(
            "1.0".parse::<AnyVersion>(),
            Ok(AnyVersion::Ec2(Ec2Version::V1_0))
        );
    }
}
