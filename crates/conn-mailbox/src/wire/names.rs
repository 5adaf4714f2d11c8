//! A list of names in a frame (destinations, members), read in place.

use std::fmt;

use conn_core::wire::{Format, Reader, WireError, Writer};

use super::Mailbox;

/// The names of a frame: a multicast's destinations, a membership's
/// members. On the wire, a `u16` count then each name as a `u8` length and
/// that many UTF-8 bytes.
///
/// Parsed, it is a checked view over the frame's bytes: every length and
/// every name's UTF-8 was checked once by [`Repr::parse`](conn_core::wire::Repr::parse),
/// and nothing was allocated. To emit, it borrows the caller's list.
///
/// ```
/// use conn_mailbox::wire::{Frame, Names, Repr};
/// use conn_core::wire::Repr as _;
///
/// let groups = ["chat", "#bob#local"];
/// let bytes = Repr::Multicast { service: 0x10, msg_type: 0, groups: Names::from(&groups), payload: b"hi" }.to_vec()?;
/// let Repr::Multicast { groups: parsed, .. } = Repr::parse(&Frame::new_checked(&bytes[..])?)? else { unreachable!() };
/// assert_eq!(parsed.len(), 2);
/// assert_eq!(parsed.iter().collect::<Vec<_>>(), groups);
/// assert_eq!(parsed, Names::from(&groups));
/// # Ok::<(), conn_mailbox::wire::WireError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Names<'a>(Inner<'a>);

#[derive(Clone, Copy)]
enum Inner<'a> {
    /// Checked bytes of a received frame: the count, then the names.
    Wire { count: u16, encoded: &'a [u8] },
    /// A caller's list, to emit.
    List(&'a [&'a str]),
}

impl<'a> Names<'a> {
    /// Reads a list from the front of `buf`; returns it and the bytes after it.
    /// Every name is checked to lie within `buf` and to be UTF-8.
    pub(crate) fn parse(buf: &'a [u8]) -> Result<(Names<'a>, &'a [u8]), WireError> {
        let mut r = Reader::new(Mailbox::PROTOCOL, buf);
        let names = Names::read(&mut r)?;
        Ok((names, r.rest()))
    }

    /// Reads a list off `r`, every name checked once, nothing allocated.
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Names<'a>, WireError> {
        let start = r.clone();
        let count = r.u16()?;
        for _ in 0..count {
            r.str8()?;
        }
        let encoded = start.clone().take(start.remaining() - r.remaining())?;
        Ok(Names(Inner::Wire { count, encoded }))
    }

    /// The list's bytes in the frame it was parsed from, count included;
    /// `None` for a caller's list.
    pub(crate) fn encoded(&self) -> Option<&'a [u8]> {
        match self.0 {
            Inner::Wire { encoded, .. } => Some(encoded),
            Inner::List(_) => None,
        }
    }

    /// How many names.
    pub fn len(&self) -> usize {
        match self.0 {
            Inner::Wire { count, .. } => count as usize,
            Inner::List(l) => l.len(),
        }
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names in order.
    pub fn iter(&self) -> NamesIter<'a> {
        NamesIter(match self.0 {
            Inner::Wire { encoded, .. } => IterInner::Wire(&encoded[2..]),
            Inner::List(l) => IterInner::List(l.iter()),
        })
    }

    /// Bytes [`Names::emit`] writes.
    pub(crate) fn buffer_len(&self) -> usize {
        match self.0 {
            Inner::Wire { encoded, .. } => encoded.len(),
            Inner::List(l) => 2 + l.iter().map(|s| 1 + s.len()).sum::<usize>(),
        }
    }

    /// Writes the list in its wire form: an error for more names than a
    /// `u16` counts or a name over 255 bytes (a received list is copied as
    /// it is).
    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        match self.0 {
            Inner::Wire { encoded, .. } => w.bytes(encoded),
            Inner::List(l) => {
                w.u16(w.len("a list of names", l.len())?)?;
                l.iter().try_for_each(|s| w.str8(s))
            }
        }
    }
}

impl<'a> From<&'a [&'a str]> for Names<'a> {
    fn from(list: &'a [&'a str]) -> Names<'a> {
        Names(Inner::List(list))
    }
}

impl<'a, const N: usize> From<&'a [&'a str; N]> for Names<'a> {
    fn from(list: &'a [&'a str; N]) -> Names<'a> {
        Names(Inner::List(list))
    }
}

impl<'a> From<&'a Vec<&'a str>> for Names<'a> {
    fn from(list: &'a Vec<&'a str>) -> Names<'a> {
        Names(Inner::List(list))
    }
}

impl PartialEq for Names<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Names<'_> {}

impl fmt::Debug for Names<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Names<'a> {
    type Item = &'a str;
    type IntoIter = NamesIter<'a>;
    fn into_iter(self) -> NamesIter<'a> {
        self.iter()
    }
}

/// The names of a [`Names`], in order.
#[derive(Clone, Debug)]
pub struct NamesIter<'a>(IterInner<'a>);

#[derive(Clone, Debug)]
enum IterInner<'a> {
    Wire(&'a [u8]),
    List(std::slice::Iter<'a, &'a str>),
}

impl<'a> Iterator for NamesIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        match &mut self.0 {
            IterInner::List(it) => it.next().copied(),
            IterInner::Wire(rest) => {
                let (&n, after) = rest.split_first()?;
                let (name, after) = after.split_at(n as usize);
                *rest = after;
                // SAFETY: `Names::parse`, the only maker of a wire list,
                // checked that every name in these bytes lies within them
                // and is UTF-8; the bytes are borrowed, so they are unchanged.
                Some(unsafe { std::str::from_utf8_unchecked(name) })
            }
        }
    }
}
