//! What a writer needs besides the files: the volume label, the one timestamp every
//! entry carries and a volume serial, all decided by the caller so that the writers
//! read no clock and draw no random numbers.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use uuid::Uuid;

/// The earliest time both formats can record (FAT counts from 1980).
pub const MIN_TIMESTAMP: i64 = 315_532_800;
/// The latest time both formats can record (FAT stops at 2107, ISO9660 dates at 2155).
pub const MAX_TIMESTAMP: i64 = 4_354_819_199;
/// Used when neither `SOURCE_DATE_EPOCH` nor the document's `created_at` is given:
/// 2020-01-01T00:00:00Z, a fixed date so that builds stay reproducible.
pub const FALLBACK_TIMESTAMP: i64 = 1_577_836_800;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("timestamp {0} is outside what ISO9660 and FAT can record (1980-01-01 to 2107-12-31)")]
    TimestampOutOfRange(i64),
    #[error("volume label `{0}` must be 1 to 11 ASCII letters, digits, `-` or `_`")]
    BadLabel(String),
}

/// Options shared by both writers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveOptions {
    label: String,
    timestamp: i64,
    serial: u32,
    volume_uuid: Uuid,
}

impl DriveOptions {
    /// `label` as the drive shows it (`config-2`, `cidata`); `timestamp` in seconds
    /// since the epoch; `instance` gives the volume serial and UUID.
    pub fn new(label: &str, timestamp: i64, instance: Uuid) -> Result<Self, OptionsError> {
        let label_ok = !label.is_empty()
            && label.len() <= 11
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !label_ok {
            return Err(OptionsError::BadLabel(label.to_owned()));
        }
        if !(MIN_TIMESTAMP..=MAX_TIMESTAMP).contains(&timestamp) {
            return Err(OptionsError::TimestampOutOfRange(timestamp));
        }
        Ok(DriveOptions {
            label: label.to_owned(),
            timestamp,
            serial: serial_of(instance),
            volume_uuid: instance,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The FAT volume serial: the instance uuid's first four bytes.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    pub fn volume_uuid(&self) -> Uuid {
        self.volume_uuid
    }

    /// The timestamp as a UTC civil date and time.
    pub fn datetime(&self) -> PrimitiveDateTime {
        civil(self.timestamp)
    }
}

fn serial_of(uuid: Uuid) -> u32 {
    let b = uuid.as_bytes();
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The drive timestamp: `SOURCE_DATE_EPOCH` when given, else `created_at`, else the
/// fixed fallback. Pure: the caller reads the environment.
pub fn choose_timestamp(source_date_epoch: Option<i64>, created_at: Option<i64>) -> i64 {
    source_date_epoch
        .or(created_at)
        .unwrap_or(FALLBACK_TIMESTAMP)
}

fn civil(ts: i64) -> PrimitiveDateTime {
    match OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => PrimitiveDateTime::new(t.date(), t.time()),
        // Unreachable after the range check in `new`; never panic.
        Err(_) => PrimitiveDateTime::new(
            Date::from_calendar_date(1980, Month::January, 1).unwrap_or(Date::MIN),
            Time::MIDNIGHT,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_comes_from_the_uuid() {
        let u = Uuid::parse_str("2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e").unwrap();
        let o = DriveOptions::new("config-2", FALLBACK_TIMESTAMP, u).unwrap();
        assert_eq!(o.serial(), 0x2f1d_4c3b);
        assert_eq!(o.datetime().year(), 2020);
    }

    #[test]
    fn rejects_bad_label_and_time() {
        let u = Uuid::nil();
        assert!(matches!(
            DriveOptions::new("", 0, u),
            Err(OptionsError::BadLabel(_))
        ));
        assert!(matches!(
            DriveOptions::new("config 2", MIN_TIMESTAMP, u),
            Err(OptionsError::BadLabel(_))
        ));
        assert_eq!(
            DriveOptions::new("x", 0, u),
            Err(OptionsError::TimestampOutOfRange(0))
        );
    }

    #[test]
    fn timestamp_precedence() {
        assert_eq!(choose_timestamp(Some(1), Some(2)), 1);
        assert_eq!(choose_timestamp(None, Some(2)), 2);
        assert_eq!(choose_timestamp(None, None), FALLBACK_TIMESTAMP);
    }
}
