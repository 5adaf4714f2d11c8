//! The kit against a small protocol of each layout.

use super::*;
use crate::{Error, ErrorKind};

#[derive(Debug, PartialEq)]
struct Plain;
impl Format for Plain {
    const PROTOCOL: &'static str = "plain";
    const LAYOUT: Layout = Layout::LengthKind;
    const MAX_BODY: usize = 300;
    type Kind = Kind;
}

#[derive(Debug, PartialEq)]
struct Tagged;
impl Format for Tagged {
    const PROTOCOL: &'static str = "tagged";
    const LAYOUT: Layout = Layout::Tagged {
        magic: *b"TG",
        version: 3,
    };
    const MAX_BODY: usize = 300;
    type Kind = Kind;
}

crate::wire_kinds! {
    /// The test kinds.
    enum Kind {
        /// A named thing.
        Name = 7 => "name",
    }
}

/// A frame carrying one `u8`-length name, in either format.
#[derive(Debug, PartialEq)]
struct Named<'a, F>(&'a str, std::marker::PhantomData<F>);

fn named<F>(s: &str) -> Named<'_, F> {
    Named(s, std::marker::PhantomData)
}

impl<'a, F: Format<Kind = Kind>> Repr<'a> for Named<'a, F> {
    type Format = F;
    fn kind(&self) -> Kind {
        Kind::Name
    }
    fn parse(frame: &Frame<'a, F>) -> Result<Self, WireError> {
        let kind = frame.checked_kind()?;
        let mut r = Reader::new(F::PROTOCOL, frame.body()).in_kind(kind.name());
        let name = r.str8()?;
        r.finish()?;
        Ok(named(name))
    }
    fn body_len(&self) -> usize {
        1 + self.0.len()
    }
    fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
        w.str8(self.0)
    }
}

fn problem<T: std::fmt::Debug>(r: Result<T, WireError>) -> Problem {
    r.unwrap_err().problem().clone()
}

#[test]
fn names_round_trip_in_both_layouts() {
    for name in ["", "x", &"n".repeat(255)] {
        let bytes = named::<Plain>(name).to_vec().unwrap();
        assert_eq!(bytes.len(), named::<Plain>(name).buffer_len());
        assert_eq!(Named::<Plain>::decode(&bytes).unwrap(), named(name));
        let bytes = named::<Tagged>(name).to_vec().unwrap();
        assert_eq!(&bytes[..4], b"TG\x03\x07");
        assert_eq!(Named::<Tagged>::decode(&bytes).unwrap(), named(name));
    }
}

#[test]
fn emitting_a_name_over_255_bytes_is_an_error_not_a_panic() {
    let long = "n".repeat(256);
    let err = named::<Plain>(&long).to_vec().unwrap_err();
    assert_eq!(
        err.problem(),
        &Problem::TooLong {
            what: "a string",
            len: 256,
            max: 255
        }
    );
    assert_eq!(Error::from(err).kind(), ErrorKind::Protocol);
}

#[test]
fn emitting_into_a_short_buffer_or_past_the_limit_is_an_error() {
    let mut short = [0u8; 6];
    assert_eq!(
        named::<Plain>("ab").emit(&mut short).unwrap_err().problem(),
        &Problem::NoRoom { need: 8, have: 6 }
    );
    let mut room = [0u8; 8];
    assert_eq!(named::<Plain>("ab").emit(&mut room), Ok(8));
    // A body over the format's limit, though each field fits its length.
    struct Big;
    impl Repr<'_> for Big {
        type Format = Plain;
        fn kind(&self) -> Kind {
            Kind::Name
        }
        fn parse(_: &Frame<'_, Plain>) -> Result<Big, WireError> {
            Ok(Big)
        }
        fn body_len(&self) -> usize {
            301
        }
        fn emit_body(&self, w: &mut Writer<'_>) -> Result<(), WireError> {
            w.bytes(&[0; 301])
        }
    }
    assert!(matches!(
        problem(Big.to_vec()),
        Problem::TooLong { max: 300, .. }
    ));
}

#[test]
fn truncated_frames_and_fields_are_errors() {
    let bytes = named::<Plain>("abc").to_vec().unwrap();
    for end in 0..bytes.len() {
        assert_eq!(
            problem(Named::<Plain>::decode(&bytes[..end])),
            Problem::Truncated { at: 0 },
            "{end}"
        );
    }
    // The length field agrees with the bytes, the name's length does not.
    let lying = [0, 0, 0, 3, 7, 5, b'a'];
    let err = Named::<Plain>::decode(&lying).unwrap_err();
    assert_eq!(err.problem(), &Problem::Truncated { at: 1 });
    assert_eq!(
        err.to_string(),
        "plain frame (name): truncated at byte 1 of the body"
    );
}

#[test]
fn bad_lengths_kinds_magic_and_versions_are_errors() {
    // A zero length, and one past the limit, in the length-first layout.
    assert!(matches!(
        problem(Named::<Plain>::decode(&[0, 0, 0, 0])),
        Problem::BadLength { len: 0, .. }
    ));
    assert!(matches!(
        problem(frame_len::<Plain>(&302u32.to_be_bytes())),
        Problem::BadLength { len: 302, .. }
    ));
    assert!(matches!(
        problem(frame_len::<Tagged>(&[b'T', b'G', 3, 7, 0, 0, 1, 45])),
        Problem::BadLength { len: 301, .. }
    ));
    assert_eq!(
        problem(Named::<Plain>::decode(&[0, 0, 0, 2, 9, 0])),
        Problem::UnknownKind(9)
    );
    assert_eq!(
        problem(Named::<Tagged>::decode(&[b'X', b'G', 3, 7, 0, 0, 0, 1, 0])),
        Problem::BadMagic(*b"XG")
    );
    assert_eq!(
        problem(Named::<Tagged>::decode(&[b'T', b'G', 4, 7, 0, 0, 0, 1, 0])),
        Problem::BadVersion {
            got: 4,
            expected: 3
        }
    );
    let mut trailing = named::<Plain>("a").to_vec().unwrap();
    trailing.push(0);
    assert_eq!(
        problem(Named::<Plain>::decode(&trailing)),
        Problem::Trailing(1)
    );
}

#[test]
fn a_count_beyond_the_bytes_left_is_refused_before_allocating() {
    let r = Reader::new("plain", &[0; 8]);
    assert_eq!(r.fit(2, 4), Ok(2));
    assert_eq!(
        r.fit(usize::MAX, 4).unwrap_err().problem(),
        &Problem::BadCount {
            count: usize::MAX,
            left: 8
        }
    );
}

#[test]
fn the_frame_reader_refuses_a_lying_header_and_a_frame_cut_off() {
    tokio_test::block_on(async {
        let mut buf = Vec::new();
        let mut limits = FrameLimits::default();
        let mut huge = &[b'T', b'G', 3, 7, 0xff, 0xff, 0xff, 0xff][..];
        let err = read_frame::<Tagged, _>(&mut huge, &mut buf, &mut limits)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(buf.capacity() < 1024, "{}", buf.capacity());
        let mut cut = &[b'T', b'G', 3, 7, 0, 0, 0, 9, 1][..];
        let err = read_frame::<Tagged, _>(&mut cut, &mut buf, &mut limits)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
        // Two frames back to back: each read stops at its frame's end.
        let mut two = named::<Tagged>("a").to_vec().unwrap();
        two.extend(named::<Tagged>("bc").to_vec().unwrap());
        let mut stream = &two[..];
        for name in ["a", "bc"] {
            let n = read_frame::<Tagged, _>(&mut stream, &mut buf, &mut limits)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(Named::<Tagged>::decode(&buf[..n]).unwrap(), named(name));
        }
        assert_eq!(
            read_frame::<Tagged, _>(&mut stream, &mut buf, &mut limits)
                .await
                .unwrap(),
            None
        );
    });
}

#[test]
fn the_frame_writer_writes_what_emit_makes() {
    tokio_test::block_on(async {
        let mut out = Vec::new();
        let mut buf = Vec::new();
        write_frame(&mut out, &named::<Plain>("hi"), &mut buf)
            .await
            .unwrap();
        assert_eq!(out, named::<Plain>("hi").to_vec().unwrap());
        let long = "n".repeat(256);
        let err = write_frame(&mut out, &named::<Plain>(&long), &mut buf)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
    });
}

#[test]
fn the_splitter_waits_for_a_whole_header_of_either_layout() {
    let frame = named::<Tagged>("abc").to_vec().unwrap();
    let mut buf = bytes::BytesMut::new();
    for (i, b) in frame.iter().enumerate() {
        assert_eq!(split_frame::<Tagged>(&mut buf), Ok(None), "{i} bytes");
        buf.extend_from_slice(&[*b]);
    }
    assert_eq!(
        &split_frame::<Tagged>(&mut buf).unwrap().unwrap()[..],
        &frame[..]
    );
    buf.extend_from_slice(b"XG\x03\x07\0\0\0\0");
    assert_eq!(
        problem(split_frame::<Tagged>(&mut buf)),
        Problem::BadMagic(*b"XG")
    );
}
