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

/// The result of reading a stream of frames: the frames, then how it
/// ended (an error's text, or `None` for a stream that simply ran out).
type Outcome = (Vec<Repr>, Option<String>);

/// Reads `stream` the way a handover channel does, arriving in `cuts`.
fn read_handover(stream: &[u8], cuts: impl Iterator<Item = Range<usize>>) -> Outcome {
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for cut in cuts {
        buf.extend_from_slice(&stream[cut]);
        loop {
            match next_frame(&mut buf) {
                Ok(Some(repr)) => frames.push(repr),
                Ok(None) => break,
                Err(e) => return (frames, Some(e.to_string())),
            }
        }
    }
    (frames, None)
}

/// The handover target: `data` (after its chunking seed) is what a
/// handover peer sends on the Unix socket.
///
/// Asserts that the frames and the error read from the stream do not
/// depend on how the stream is cut into reads, and that every frame read
/// emits back to exactly its own bytes and parses again to the same
/// [`Repr`].
pub fn handover(data: &[u8]) {
    let (seed, stream) = split_seed(data);
    let whole = read_handover(stream, std::iter::once(0..stream.len()));
    let cut = read_handover(stream, chunks(seed, stream.len()));
    assert_eq!(whole, cut, "the frames depend on how the stream was cut");
    let mut at = 0;
    for repr in &whole.0 {
        let bytes = repr.emit().expect("a parsed frame emits");
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

/// Seed inputs for [`handover`]: every kind of frame, one per input, and
/// a whole exchange in one stream; each behind chunking seed 0 (one byte
/// at a time) or 5 (up to 64 bytes).
pub fn handover_seeds() -> Vec<(String, Vec<u8>)> {
    let offer = Repr::Offer {
        names: vec!["tcp://0.0.0.0:80".into(), "ipc:///run/app.sock".into()],
    };
    let refused = Repr::Refused {
        why: "uid 65534 is not uid 0".into(),
    };
    let mut seeds = Vec::new();
    let mut exchange = vec![5];
    for (name, repr) in [
        ("take", Repr::Take),
        ("offer", offer),
        ("offer-empty", Repr::Offer { names: vec![] }),
        ("confirm", Repr::Confirm),
        ("refused", refused),
    ] {
        let bytes = repr.emit().expect("seed frames emit");
        exchange.extend_from_slice(&bytes);
        let mut one = vec![0];
        one.extend_from_slice(&bytes);
        seeds.push((name.to_owned(), one));
    }
    seeds.push(("exchange".into(), exchange));
    seeds
}
