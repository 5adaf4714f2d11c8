//! Reading and writing a body's fields, every length checked: the one
//! cursor pair every format here parses and emits with.

use super::{Problem, WireError};

/// Reads fields off the front of a body. Every read checks the bytes are
/// there first; running short, a bad string or a count beyond the bytes
/// left is a [`WireError`] naming the protocol, the kind and the offset.
///
/// ```
/// use conn_core::wire::Reader;
/// let mut r = Reader::new("demo", &[0, 7, 2, b'h', b'i', 9]);
/// assert_eq!(r.u16()?, 7);
/// assert_eq!(r.str8()?, "hi");
/// assert!(r.u32().is_err()); // one byte left, not four
/// # Ok::<(), conn_core::wire::WireError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    protocol: &'static str,
    kind: Option<&'static str>,
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `body`, a frame of `protocol`.
    pub fn new(protocol: &'static str, body: &'a [u8]) -> Reader<'a> {
        Reader {
            protocol,
            kind: None,
            buf: body,
            at: 0,
        }
    }

    /// Names the frame kind in the errors from here on.
    pub fn in_kind(mut self, kind: &'static str) -> Reader<'a> {
        self.kind = Some(kind);
        self
    }

    /// An error of this reader's protocol and kind.
    pub fn error(&self, problem: Problem) -> WireError {
        let e = WireError::new(self.protocol, problem);
        match self.kind {
            Some(kind) => e.in_kind(kind),
            None => e,
        }
    }

    /// A field with a value its frame does not allow.
    pub fn bad(&self, what: &'static str) -> WireError {
        self.error(Problem::BadField(what))
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let Some((head, rest)) = self.buf.split_at_checked(n) else {
            return Err(self.error(Problem::Truncated { at: self.at }));
        };
        self.buf = rest;
        self.at += n;
        Ok(head)
    }

    /// The next `N` bytes as an array (nonces, MACs).
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian `i16`.
    pub fn i16(&mut self) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian `i32`.
    pub fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A byte that must be 0 or 1.
    pub fn bool(&mut self) -> Result<bool, WireError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.bad("a flag that is neither 0 nor 1")),
        }
    }

    /// A count of items, each at least `min_item` bytes, which must fit in
    /// what is left: no count makes a parser allocate more than the frame
    /// holds.
    pub fn fit(&self, count: usize, min_item: usize) -> Result<usize, WireError> {
        let left = self.buf.len();
        if count.saturating_mul(min_item.max(1)) > left {
            return Err(self.error(Problem::BadCount { count, left }));
        }
        Ok(count)
    }

    /// Bytes after a `u8` length.
    pub fn bytes8(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u8()?;
        self.take(n.into())
    }

    /// Bytes after a big-endian `u16` length.
    pub fn bytes16(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u16()?;
        self.take(n.into())
    }

    /// Bytes after a big-endian `u32` length.
    pub fn bytes32(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// `bytes` as UTF-8, which began `len` bytes back.
    fn utf8(&self, bytes: &'a [u8]) -> Result<&'a str, WireError> {
        std::str::from_utf8(bytes).map_err(|_| {
            self.error(Problem::BadString {
                at: self.at - bytes.len(),
            })
        })
    }

    /// A string after a `u8` length.
    pub fn str8(&mut self) -> Result<&'a str, WireError> {
        let b = self.bytes8()?;
        self.utf8(b)
    }

    /// A string after a big-endian `u16` length.
    pub fn str16(&mut self) -> Result<&'a str, WireError> {
        let b = self.bytes16()?;
        self.utf8(b)
    }

    /// A string after a big-endian `u32` length.
    pub fn str32(&mut self) -> Result<&'a str, WireError> {
        let b = self.bytes32()?;
        self.utf8(b)
    }

    /// All the bytes left.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = std::mem::take(&mut self.buf);
        self.at += rest.len();
        rest
    }

    /// All the bytes left, as UTF-8.
    pub fn rest_str(&mut self) -> Result<&'a str, WireError> {
        let b = self.rest();
        self.utf8(b)
    }

    /// Ends reading: bytes left over are an error.
    pub fn finish(self) -> Result<(), WireError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(self.error(Problem::Trailing(n))),
        }
    }
}

/// Writes fields into the caller's buffer, front to back. Running out of
/// room, or a value too long for its length field, is a [`WireError`],
/// never a panic.
///
/// ```
/// use conn_core::wire::Writer;
/// let mut buf = [0u8; 4];
/// let mut w = Writer::new("demo", &mut buf);
/// w.u16(7)?;
/// assert!(w.str8(&"x".repeat(300)).is_err()); // a u8 length holds 255
/// w.str8("h")?;
/// w.finish()?;
/// assert_eq!(buf, [0, 7, 1, b'h']);
/// # Ok::<(), conn_core::wire::WireError>(())
/// ```
#[derive(Debug)]
pub struct Writer<'b> {
    protocol: &'static str,
    out: &'b mut [u8],
    at: usize,
}

impl<'b> Writer<'b> {
    /// A writer that fills `out`, a frame body of `protocol`.
    pub fn new(protocol: &'static str, out: &'b mut [u8]) -> Writer<'b> {
        Writer {
            protocol,
            out,
            at: 0,
        }
    }

    fn error(&self, problem: Problem) -> WireError {
        WireError::new(self.protocol, problem)
    }

    /// Bytes as they are.
    pub fn bytes(&mut self, b: &[u8]) -> Result<(), WireError> {
        let have = self.out.len();
        let Some(to) = self.out.get_mut(self.at..self.at + b.len()) else {
            return Err(self.error(Problem::NoRoom {
                need: self.at + b.len(),
                have,
            }));
        };
        to.copy_from_slice(b);
        self.at += b.len();
        Ok(())
    }

    /// A byte.
    pub fn u8(&mut self, v: u8) -> Result<(), WireError> {
        self.bytes(&[v])
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), WireError> {
        self.bytes(&v.to_be_bytes())
    }

    /// A big-endian `i16`.
    pub fn i16(&mut self, v: i16) -> Result<(), WireError> {
        self.bytes(&v.to_be_bytes())
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), WireError> {
        self.bytes(&v.to_be_bytes())
    }

    /// A big-endian `i32`.
    pub fn i32(&mut self, v: i32) -> Result<(), WireError> {
        self.bytes(&v.to_be_bytes())
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), WireError> {
        self.bytes(&v.to_be_bytes())
    }

    /// A flag as 0 or 1.
    pub fn bool(&mut self, v: bool) -> Result<(), WireError> {
        self.u8(v.into())
    }

    /// `n` as a length or count of `what` in a field of type `T`: an error
    /// when it does not fit.
    pub fn len<T: TryFrom<usize>>(&self, what: &'static str, n: usize) -> Result<T, WireError> {
        T::try_from(n).map_err(|_| {
            self.error(Problem::TooLong {
                what,
                len: n,
                max: max_of::<T>(),
            })
        })
    }

    /// Bytes after a `u8` length.
    pub fn bytes8(&mut self, b: &[u8]) -> Result<(), WireError> {
        let n = self.len("a byte string", b.len())?;
        self.u8(n)?;
        self.bytes(b)
    }

    /// Bytes after a big-endian `u16` length.
    pub fn bytes16(&mut self, b: &[u8]) -> Result<(), WireError> {
        let n = self.len("a byte string", b.len())?;
        self.u16(n)?;
        self.bytes(b)
    }

    /// Bytes after a big-endian `u32` length.
    pub fn bytes32(&mut self, b: &[u8]) -> Result<(), WireError> {
        let n = self.len("a byte string", b.len())?;
        self.u32(n)?;
        self.bytes(b)
    }

    /// A string after a `u8` length: an error past 255 bytes.
    pub fn str8(&mut self, s: &str) -> Result<(), WireError> {
        let n = self.len("a string", s.len())?;
        self.u8(n)?;
        self.bytes(s.as_bytes())
    }

    /// A string after a big-endian `u16` length.
    pub fn str16(&mut self, s: &str) -> Result<(), WireError> {
        let n = self.len("a string", s.len())?;
        self.u16(n)?;
        self.bytes(s.as_bytes())
    }

    /// A string after a big-endian `u32` length.
    pub fn str32(&mut self, s: &str) -> Result<(), WireError> {
        let n = self.len("a string", s.len())?;
        self.u32(n)?;
        self.bytes(s.as_bytes())
    }

    /// Ends writing: the body must fill the buffer exactly, else its
    /// `body_len` and its emit disagree.
    pub fn finish(self) -> Result<(), WireError> {
        if self.at == self.out.len() {
            Ok(())
        } else {
            Err(self.error(Problem::BadField(
                "the body emitted is not as long as its length said",
            )))
        }
    }
}

/// The largest value of the length type `T` (u8, u16, u32).
fn max_of<T: TryFrom<usize>>() -> usize {
    [u8::MAX as usize, u16::MAX as usize, u32::MAX as usize]
        .into_iter()
        .find(|&m| T::try_from(m + 1).is_err())
        .unwrap_or(usize::MAX)
}
