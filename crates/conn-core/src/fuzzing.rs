//! **Not API.** What the fuzz targets in the repository's `fuzz/` directory
//! (and the stable replay of their corpus, `crates/fuzz-targets`) call: the
//! handover decoder's target, and the helpers every target shares. Hidden
//! from the docs; it may change or go at any time.
//!
//! Each target takes arbitrary bytes and must never panic, allocate beyond
//! what the bytes justify, or hang; where the decoder has properties (a
//! parse that round-trips, a stream reader that does not care how the
//! stream was cut), the target asserts them, so a violation is a crash.

use std::ops::Range;

use crate::handover::wire::{Frame, Repr, next_frame};
use crate::wire::Repr as _;

/// Splits fuzz input into a chunking seed (its first byte) and the bytes
/// to decode (the rest). Empty input is seed 0 and no bytes.
///
/// ```
/// assert_eq!(conn_core::fuzzing::split_seed(&[7, 1, 2]), (7, &[1u8, 2][..]));
/// assert_eq!(conn_core::fuzzing::split_seed(&[]), (0, &[][..]));
/// ```
pub fn split_seed(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((seed, rest)) => (*seed, rest),
        None => (0, data),
    }
}

/// Cuts `0..len` into consecutive, non-empty ranges whose sizes `seed`
/// picks: its low three bits the largest size (1, 2, 3, 7, 16, 64, 512 or
/// 4096 bytes), the rest a pseudo-random sequence of sizes up to it.
/// The same seed and length always give the same cuts.
///
/// ```
/// let cuts: Vec<_> = conn_core::fuzzing::chunks(0, 5).collect();
/// assert_eq!(cuts, [0..1, 1..2, 2..3, 3..4, 4..5]);
/// let cuts: Vec<_> = conn_core::fuzzing::chunks(7, 10).collect();
/// assert_eq!(cuts.first().unwrap().start, 0);
/// assert_eq!(cuts.last().unwrap().end, 10);
/// ```
pub fn chunks(seed: u8, len: usize) -> impl Iterator<Item = Range<usize>> {
    const LARGEST: [usize; 8] = [1, 2, 3, 7, 16, 64, 512, 4096];
    let largest = LARGEST[usize::from(seed & 7)];
    // xorshift64; never zero.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(seed);
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= len {
            return None;
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let size = 1 + (state % largest as u64) as usize;
        let end = (at + size).min(len);
        let range = at..end;
        at = end;
        Some(range)
    })
}

/// Reads `data` (a chunking seed, then a stream; see [`split_seed`]) as a
/// stream reader does, with `next` taking each whole frame off the front
/// of a buffer: once with the stream in one piece, once cut into the
/// seed's [`chunks`]. Asserts that both give the same frames and end the
/// same way, and returns the stream, its frames, and the error that ended
/// it (`None`: the bytes ran out).
///
/// ```
/// // A reader of one-byte frames, where 0 is an error.
/// let next = |buf: &mut Vec<u8>| match buf.first().copied() {
///     None => Ok(None),
///     Some(0) => Err("zero"),
///     Some(b) => { buf.remove(0); Ok(Some(b)) }
/// };
/// let (stream, frames, end) = conn_core::fuzzing::read_however_cut(&[3, 1, 2, 0, 9], next);
/// assert_eq!((stream, frames, end), (&[1u8, 2, 0, 9][..], vec![1, 2], Some("zero".to_owned())));
/// ```
pub fn read_however_cut<B, F, E>(
    data: &[u8],
    mut next: impl FnMut(&mut B) -> Result<Option<F>, E>,
) -> (&[u8], Vec<F>, Option<String>)
where
    B: Default + for<'a> Extend<&'a u8>,
    F: PartialEq + std::fmt::Debug,
    E: std::fmt::Display,
{
    let (seed, stream) = split_seed(data);
    let mut read = |cuts: &mut dyn Iterator<Item = Range<usize>>| {
        let mut buf = B::default();
        let mut frames = Vec::new();
        for cut in cuts {
            buf.extend(&stream[cut]);
            loop {
                match next(&mut buf) {
                    Ok(Some(frame)) => frames.push(frame),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e.to_string())),
                }
            }
        }
        (frames, None)
    };
    let whole = read(&mut std::iter::once(0..stream.len()));
    let cut = read(&mut chunks(seed, stream.len()));
    assert_eq!(whole, cut, "the frames depend on how the stream was cut");
    (stream, whole.0, whole.1)
}

/// Seed inputs from real frames: each frame alone behind chunking seed 0
/// (a byte at a time), named after it, and all of them in one stream
/// behind seed 5 (reads of up to 64 bytes), named `stream`.
///
/// ```
/// let seeds = conn_core::fuzzing::stream_seeds([("a", vec![1, 2]), ("b", vec![3])]);
/// assert_eq!(seeds[0], ("a".to_owned(), vec![0, 1, 2]));
/// assert_eq!(seeds[2], ("stream".to_owned(), vec![5, 1, 2, 3]));
/// ```
pub fn stream_seeds<'a>(
    frames: impl IntoIterator<Item = (&'a str, Vec<u8>)>,
) -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let mut stream = vec![5];
    for (name, bytes) in frames {
        stream.extend_from_slice(&bytes);
        let mut one = vec![0];
        one.extend_from_slice(&bytes);
        seeds.push((name.to_owned(), one));
    }
    seeds.push(("stream".into(), stream));
    seeds
}

/// The handover target: `data` (after its chunking seed) is what a
/// handover peer sends on the Unix socket.
///
/// Asserts that the frames and the error read from the stream do not
/// depend on how the stream is cut into reads, and that every frame read
/// emits back to exactly its own bytes and parses again to the same
/// [`Repr`].
pub fn handover(data: &[u8]) {
    let (stream, frames, _) = read_however_cut(data, next_frame);
    let mut at = 0;
    for repr in &frames {
        let bytes = repr.to_vec().expect("a parsed frame emits");
        assert_eq!(
            bytes,
            stream[at..at + bytes.len()],
            "{repr:?} emits other bytes than it came from"
        );
        let again = Repr::parse(&Frame::new_checked(&bytes[..]).expect("emitted frames check"))
            .expect("emitted frames parse");
        assert_eq!(&again, repr);
        at += bytes.len();
    }
}

/// Seed inputs for [`handover`]: every kind of frame (see
/// [`stream_seeds`]).
pub fn handover_seeds() -> Vec<(String, Vec<u8>)> {
    let offer = Repr::Offer {
        names: vec!["tcp://0.0.0.0:80".into(), "ipc:///run/app.sock".into()],
    };
    let refused = Repr::Refused {
        why: "uid 65534 is not uid 0".into(),
    };
    stream_seeds(
        [
            ("take", Repr::Take),
            ("offer", offer),
            ("offer-empty", Repr::Offer { names: vec![] }),
            ("confirm", Repr::Confirm),
            ("refused", refused),
        ]
        .map(|(name, repr)| (name, repr.to_vec().expect("seed frames emit"))),
    )
}
