//! Service levels and flags of a multicast (Spread's service types).
//!
//! One daemon sequences every message of every group in one total order, so
//! here every level gets at least what `AGREED` promises. What each level
//! means with one daemon:
//!
//! | level | guarantee here |
//! |---|---|
//! | `UNRELIABLE` | delivered in the total order, but a receiver whose outbound queue is full simply misses it (the only level that can be dropped without dropping the receiver) |
//! | `RELIABLE` | delivered to every member that stays connected; a receiver that falls behind is dropped instead (cause network) |
//! | `FIFO` | `RELIABLE`, and one sender's messages arrive in the order sent |
//! | `CAUSAL` | `FIFO`, and a message arrives after every message its sender had received when sending it |
//! | `AGREED` | `CAUSAL`, and every member sees every group's messages in one total order, membership messages included |
//! | `SAFE` | `AGREED`; with one daemon, "every daemon has it" is true as soon as the daemon sequenced it |
//!
//! `SELF_DISCARD` may be or-ed to any level: the sender gets no copy.
//!
//! Daemons joined through corosync (`mailboxd --cluster corosync`) keep every
//! level as above across machines. `SAFE` there means: delivered once every
//! daemon of the configuration acknowledged it, or, when the configuration
//! changes first, after a transitional membership
//! ([`Cause::Transition`](crate::Cause::Transition)) to the daemons that
//! move on together; the repository's docs/cluster.md maps each level.

/// A multicast's service: one level, optionally or-ed with [`SELF_DISCARD`](Service::SELF_DISCARD).
///
/// ```
/// use conn_mailbox::Service;
/// let s = Service::AGREED | Service::SELF_DISCARD;
/// assert!(s.is_valid() && s.self_discard());
/// assert!(!Service::from_bits(0x4000).is_valid());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Service(u32);

impl Service {
    /// May be dropped for a receiver whose queue is full.
    pub const UNRELIABLE: Service = Service(0x01);
    /// Delivered to every member that stays connected.
    pub const RELIABLE: Service = Service(0x02);
    /// Reliable, in each sender's order.
    pub const FIFO: Service = Service(0x04);
    /// FIFO, after what the sender had seen.
    pub const CAUSAL: Service = Service(0x08);
    /// One total order across all groups and members.
    pub const AGREED: Service = Service(0x10);
    /// Agreed, and stable at every daemon (one here).
    pub const SAFE: Service = Service(0x20);
    /// The sender receives no copy of its own message.
    pub const SELF_DISCARD: Service = Service(0x40);

    const LEVELS: u32 = 0x3f;

    /// The service with these raw bits (checked by [`Service::is_valid`]).
    pub const fn from_bits(bits: u32) -> Service {
        Service(bits)
    }

    /// The raw bits, as on the wire.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when exactly one level is set and no unknown bit.
    pub fn is_valid(self) -> bool {
        let level = self.0 & Self::LEVELS;
        self.0 & !(Self::LEVELS | Self::SELF_DISCARD.0) == 0 && level.count_ones() == 1
    }

    /// True when the sender gets no copy.
    pub fn self_discard(self) -> bool {
        self.0 & Self::SELF_DISCARD.0 != 0
    }

    /// True for [`Service::UNRELIABLE`].
    pub fn is_unreliable(self) -> bool {
        self.0 & Self::LEVELS == Self::UNRELIABLE.0
    }

    /// True for [`Service::SAFE`].
    #[cfg_attr(
        not(feature = "corosync"),
        expect(dead_code, reason = "only the corosync cluster's gate calls it")
    )]
    pub(crate) fn is_safe(self) -> bool {
        self.0 & Self::LEVELS == Self::SAFE.0
    }

    /// The level's name, e.g. `"AGREED"` (`"INVALID"` when not valid).
    pub fn level_name(self) -> &'static str {
        match self.0 & Self::LEVELS {
            0x01 => "UNRELIABLE",
            0x02 => "RELIABLE",
            0x04 => "FIFO",
            0x08 => "CAUSAL",
            0x10 => "AGREED",
            0x20 => "SAFE",
            _ => "INVALID",
        }
    }
}

impl std::ops::BitOr for Service {
    type Output = Service;
    fn bitor(self, rhs: Service) -> Service {
        Service(self.0 | rhs.0)
    }
}
