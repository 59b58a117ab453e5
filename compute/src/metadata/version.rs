//! The metadata versions we serve, in order: Nova's, and for the EC2 tree the newer
//! versions AWS clients pin (see `shared/spec/aws.md`).

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
        V2011_01_01 = "2011-01-01",
        V2011_05_01 = "2011-05-01",
        V2012_01_12 = "2012-01-12",
        V2014_02_25 = "2014-02-25",
        V2014_11_05 = "2014-11-05",
        V2015_10_20 = "2015-10-20",
        V2016_04_19 = "2016-04-19",
        V2016_06_30 = "2016-06-30",
        V2016_09_02 = "2016-09-02",
        V2018_03_28 = "2018-03-28",
        V2018_08_17 = "2018-08-17",
        V2018_09_24 = "2018-09-24",
        V2019_10_01 = "2019-10-01",
        V2020_10_27 = "2020-10-27",
        V2021_01_03 = "2021-01-03",
        V2021_03_23 = "2021-03-23",
        V2021_07_15 = "2021-07-15",
        V2022_09_24 = "2022-09-24",
        V2024_04_11 = "2024-04-11",
    ]
);

impl Ec2Version {
    /// The versions Nova serves (1.0 to 2009-04-04); the rest are AWS's.
    pub const NOVA: &'static [Ec2Version] = &[
        Ec2Version::V1_0,
        Ec2Version::V2007_01_19,
        Ec2Version::V2007_03_01,
        Ec2Version::V2007_08_29,
        Ec2Version::V2007_10_10,
        Ec2Version::V2007_12_15,
        Ec2Version::V2008_02_01,
        Ec2Version::V2008_09_01,
        Ec2Version::V2009_04_04,
    ];

    /// Whether Nova serves this version (else only the AWS tree has it).
    pub fn is_nova(self) -> bool {
        self <= Ec2Version::V2009_04_04
    }
}

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
        assert_eq!(Ec2Version::ALL.len(), 28);
        assert!(Ec2Version::ALL
            .windows(2)
            .all(|w| w[0] < w[1] && w[0].as_str() < w[1].as_str()));
        assert_eq!(Ec2Version::NOVA, &Ec2Version::ALL[..9]);
        assert!(Ec2Version::NOVA.iter().all(|v| v.is_nova()));
        assert!(Ec2Version::ALL[9..].iter().all(|v| !v.is_nova()));
        assert!("latest".parse::<AnyVersion>().is_err());
        assert_eq!(
            "1.0".parse::<AnyVersion>(),
            Ok(AnyVersion::Ec2(Ec2Version::V1_0))
        );
    }
}
