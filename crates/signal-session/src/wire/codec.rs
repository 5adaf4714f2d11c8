//! Reading and writing the payload's fields, every length checked.

use conn_core::{Error, ErrorKind, Result};

/// Reads fields from a payload; running short or leaving bytes over is a
/// protocol error.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

fn short(what: &'static str) -> Error {
    Error::new(ErrorKind::Protocol)
        .during("parse sessiond message")
        .detail(format!("the {what} payload ends early"))
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { data, what }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.data.len() < n {
            return Err(short(self.what));
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        Ok(self.bytes(N)?.try_into().expect("N bytes"))
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.bad(format!("{b} is not a boolean"))),
        }
    }

    /// A length or count, which must fit in what is left (each item takes
    /// at least `min_item` bytes), so no count makes us allocate more than
    /// the frame holds.
    pub(crate) fn count(&mut self, min_item: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min_item.max(1)) > self.data.len() {
            return Err(self.bad(format!(
                "a count of {n} does not fit in the {} bytes left",
                self.data.len()
            )));
        }
        Ok(n)
    }

    pub(crate) fn byte_string(&mut self) -> Result<&'a [u8]> {
        let n = self.count(1)?;
        self.bytes(n)
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        let bytes = self.byte_string()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.bad("a string is not UTF-8"))
    }

    pub(crate) fn bad(&self, detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol)
            .during("parse sessiond message")
            .detail(format!("{}: {}", self.what, detail.into()))
    }

    /// Ends reading: bytes left over are an error.
    pub(crate) fn finish(self) -> Result<()> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(self.bad(format!("{} bytes left over", self.data.len())))
        }
    }
}

/// Appends fields to a payload.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) out: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn bool(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.out.extend_from_slice(v);
    }
    pub(crate) fn byte_string(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.out.extend_from_slice(v);
    }
    pub(crate) fn string(&mut self, v: &str) {
        self.byte_string(v.as_bytes());
    }
}
