//! Socket ids (mTCP's `sockid`) and the per-stack table that hands them out.

use std::fmt;

use crate::conns::Key;

/// Bits of a [`SockId`] that number the socket within its stack; the bits
/// above them name the stack, so a stack recognises ids it did not create.
const INDEX_BITS: u32 = 20;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

/// A socket's name, as mTCP's `int sockid`: a `u32` that says which stack
/// made it (top 12 bits) and which slot of that stack's table it is (low
/// 20 bits). Slots of closed sockets are reused, most recently freed first,
/// so ids repeat just as file descriptors do.
///
/// ```
/// use conn_utcp::{MemLink, SockId, Stack};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> conn_core::Result<()> {
/// let (a, _b) = MemLink::pair();
/// let stack = Stack::builder(a).address("10.9.0.1/24".parse().unwrap()).build()?;
/// let listener = conn_utcp::UtcpListener::bind(&stack, 80, 4)?;
/// let id: SockId = listener.id();
/// assert_eq!(id.index(), 0);
/// assert_eq!(id.stack(), stack.number());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SockId(u32);

impl SockId {
    pub(crate) fn new(stack: u32, index: u32) -> SockId {
        SockId((stack << INDEX_BITS) | (index & INDEX_MASK))
    }

    /// The raw `u32`, as mTCP would hand it out.
    pub fn as_u32(self) -> u32 {
        self.0
    }

    /// The id with this raw value (it may name no socket at all).
    pub fn from_u32(raw: u32) -> SockId {
        SockId(raw)
    }

    /// The number of the stack that made this id ([`Stack::number`](crate::Stack::number)).
    pub fn stack(self) -> u32 {
        self.0 >> INDEX_BITS
    }

    /// The slot within its stack.
    pub fn index(self) -> u32 {
        self.0 & INDEX_MASK
    }
}

impl fmt::Display for SockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "utcp socket {} of stack {}", self.index(), self.stack())
    }
}

/// What a slot holds.
#[derive(Debug)]
pub(crate) enum Entry {
    /// One connection (its key in the stack's connection table).
    Stream(Key),
    /// A listening port (its backlog is the stack's, by port).
    Listener { port: u16 },
}

#[derive(Debug, Default)]
struct Slot {
    /// Bumped on every reuse, so a typed handle of an earlier socket in the
    /// same slot is not mistaken for the new one.
    generation: u32,
    entry: Option<Entry>,
}

/// The slot table of one stack.
#[derive(Debug, Default)]
pub(crate) struct Table {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Table {
    /// Stores `entry` in a free slot (the most recently freed first) and
    /// returns the slot and its generation.
    pub(crate) fn insert(&mut self, entry: Entry) -> (u32, u32) {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot::default());
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.entry = Some(entry);
        (index, slot.generation)
    }

    /// The entry in `index`, when it is live (and of `generation`, if given).
    pub(crate) fn get_mut(&mut self, index: u32, generation: Option<u32>) -> Option<&mut Entry> {
        let slot = self.slots.get_mut(index as usize)?;
        if generation.is_some_and(|g| g != slot.generation) {
            return None;
        }
        slot.entry.as_mut()
    }

    /// Frees `index` and returns what it held.
    pub(crate) fn remove(&mut self, index: u32) -> Option<Entry> {
        let entry = self.slots.get_mut(index as usize)?.entry.take()?;
        self.free.push(index);
        Some(entry)
    }
}
