//! Choosing the source: the device given, else a scanned config drive, else the
//! metadata service (`--source auto`), or exactly the one asked for.

use crate::report::error_chain;
use crate::source::{
    BlockScan, ConfigDriveSource, MetadataSource, Provider, RetryPolicy, SourceError,
};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SourceChoice {
    /// `--device` if given; else a drive labelled config-2; else the metadata service.
    #[default]
    Auto,
    ConfigDrive,
    Metadata,
}

#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    pub choice: SourceChoice,
    pub device: Option<PathBuf>,
    pub metadata_url: String,
    pub scan: BlockScan,
    pub retry: RetryPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("config drive")]
    Drive(#[source] Box<SourceError>),
    #[error("metadata service")]
    Metadata(#[source] Box<SourceError>),
    /// The drive's error is spelled out here (with its causes): an error has one
    /// source, and that is the metadata service's.
    #[error("no config drive ({}), and no metadata service", error_chain(.drive))]
    Neither {
        drive: Box<SourceError>,
        #[source]
        metadata: Box<SourceError>,
    },
}

pub fn discover(opts: &DiscoverOptions) -> Result<Box<dyn Provider>, DiscoverError> {
    let drive = || -> Result<Box<dyn Provider>, SourceError> {
        let path = match &opts.device {
            Some(p) => p.clone(),
            None => opts.scan.find()?,
        };
        Ok(Box::new(ConfigDriveSource::open(&path)?))
    };
    let metadata = || -> Result<Box<dyn Provider>, SourceError> {
        Ok(Box::new(MetadataSource::connect(
            &opts.metadata_url,
            opts.retry,
        )?))
    };
    match opts.choice {
        SourceChoice::ConfigDrive => drive().map_err(|e| DiscoverError::Drive(Box::new(e))),
        SourceChoice::Metadata => metadata().map_err(|e| DiscoverError::Metadata(Box::new(e))),
        // A device named on the command line is the answer, broken or not.
        SourceChoice::Auto if opts.device.is_some() => {
            drive().map_err(|e| DiscoverError::Drive(Box::new(e)))
        }
        SourceChoice::Auto => match drive() {
            Ok(p) => Ok(p),
            Err(drive) => metadata().map_err(|metadata| DiscoverError::Neither {
                drive: Box::new(drive),
                metadata: Box::new(metadata),
            }),
        },
    }
}
