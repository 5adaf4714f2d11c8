//! The array session handle.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};

use conn_core::{Error, ErrorKind};

/// A 64-bit session handle (Array Services' `ash_t`), shown and parsed in
/// hex.
///
/// Handles [`Session::create`](crate::Session::create) hands out are unique
/// within this process and unlikely to repeat across processes: the high
/// half is drawn at random once per process, the low half counts.
///
/// # Examples
///
/// ```
/// use signal_session::Ash;
///
/// let ash: Ash = "0x1234abcd00000001".parse().unwrap();
/// assert_eq!(ash.raw(), 0x1234_abcd_0000_0001);
/// assert_eq!(ash.to_string(), "0x1234abcd00000001");
/// assert_eq!("1234ABCD00000001".parse::<Ash>().unwrap(), ash); // the prefix is optional
/// assert!("0xnothex".parse::<Ash>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ash(u64);

impl Ash {
    /// The handle with this value.
    pub const fn from_raw(raw: u64) -> Ash {
        Ash(raw)
    }

    /// The handle's value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// A handle no other call in this process has returned.
    pub(crate) fn unique() -> Ash {
        static HIGH: LazyLock<u64> = LazyLock::new(|| {
            let random = RandomState::new().hash_one(std::process::id());
            // Never zero, so no handle is 0x0.
            (random << 32) | (1 << 63)
        });
        static NEXT: AtomicU32 = AtomicU32::new(1);
        Ash(*HIGH | u64::from(NEXT.fetch_add(1, Ordering::Relaxed)))
    }
}

impl fmt::Display for Ash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// As its text: `"0x00000000000000ab"`.
impl serde::Serialize for Ash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for Ash {
    type Err = Error;

    fn from_str(s: &str) -> Result<Ash, Error> {
        let digits = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        u64::from_str_radix(digits, 16).map(Ash).map_err(|e| {
            Error::new(ErrorKind::InvalidType)
                .during("parse session handle")
                .on(format_args!("{s:?}"))
                .detail("expected up to 16 hex digits, like 0x1234abcd00000001")
                .with_source(e)
        })
    }
}

impl From<u64> for Ash {
    fn from(raw: u64) -> Ash {
        Ash(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_handles_differ_and_round_trip_through_hex() {
        let a = Ash::unique();
        let b = Ash::unique();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<Ash>().unwrap(), a);
        assert!(a.to_string().starts_with("0x"));
        assert_eq!(a.to_string().len(), 18);
    }

    #[test]
    fn a_malformed_handle_names_what_was_expected() {
        let err = "0x12345678123456789".parse::<Ash>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidType);
        assert!(err.to_string().contains("parse session handle"), "{err}");
    }
}
