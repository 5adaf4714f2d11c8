//! Where the router builds the frames it queues: a few large chunks, used
//! in turn and reused in place.
//!
//! A delivered message is one frame shared by every outbox it goes to. A
//! fresh allocation per frame would, at 10 KiB a message, cost more than the
//! routing: glibc hands back freed memory to the kernel, and every new page
//! then faults on first touch. So frames are split off a chunk; once every
//! frame of a chunk is written and dropped, the chunk is unique again and
//! [`BytesMut::try_reclaim`] takes it back without allocating. The chunks
//! are used round-robin, so the one reclaimed is the oldest, whose frames
//! have had the longest to go out.

use bytes::{Bytes, BytesMut};

use crate::wire::Repr;

/// Chunks in the ring.
const CHUNKS: usize = 4;
/// The size of a chunk; a larger frame gets a chunk of its own size.
const CHUNK: usize = 256 * 1024;

/// The router's frame builder.
pub(crate) struct FrameArena {
    chunks: [BytesMut; CHUNKS],
    current: usize,
}

impl FrameArena {
    pub(crate) fn new() -> FrameArena {
        FrameArena {
            chunks: std::array::from_fn(|_| BytesMut::new()),
            current: 0,
        }
    }

    /// `repr` as a frame of its own, sharing a chunk with its neighbours.
    pub(crate) fn frame(&mut self, repr: &Repr<'_>) -> Bytes {
        let len = repr.buffer_len();
        if self.chunks[self.current].capacity() < len {
            self.current = (self.current + 1) % CHUNKS;
            let chunk = &mut self.chunks[self.current];
            let want = len.max(CHUNK);
            if !chunk.try_reclaim(want) {
                // Frames of this chunk still wait in some outbox: they keep
                // the old memory alive until they go; this chunk starts anew.
                *chunk = BytesMut::with_capacity(want);
            }
        }
        let chunk = &mut self.chunks[self.current];
        repr.emit(chunk);
        chunk.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Frame, Names};

    fn message(body: &[u8]) -> Repr<'_> {
        Repr::Message {
            service: 0x10,
            msg_type: 0,
            sender: "#a#d",
            groups: Names::from(&["g"]),
            payload: body,
        }
    }

    #[test]
    fn frames_are_whole_and_independent() {
        let mut arena = FrameArena::new();
        let a = arena.frame(&message(b"first"));
        let b = arena.frame(&message(b"second"));
        for (f, body) in [(&a, &b"first"[..]), (&b, &b"second"[..])] {
            let Repr::Message { payload, .. } =
                Repr::parse(&Frame::new_checked(&f[..]).unwrap()).unwrap()
            else {
                panic!("a message")
            };
            assert_eq!(payload, body);
        }
    }

    #[test]
    fn a_chunk_whose_frames_are_gone_is_reused_in_place() {
        let mut arena = FrameArena::new();
        let body = vec![7u8; 60 * 1024];
        // Fill the whole ring once, dropping every frame.
        let first = arena.frame(&message(&body));
        let start = first.as_ptr();
        drop(first);
        for _ in 0..(CHUNKS * CHUNK / body.len()) {
            drop(arena.frame(&message(&body)));
        }
        // Round the ring again: the first chunk's memory comes back.
        let mut seen = false;
        for _ in 0..(CHUNKS * CHUNK / body.len()) {
            seen |= arena.frame(&message(&body)).as_ptr() == start;
        }
        assert!(seen, "the first chunk was reclaimed");
    }

    #[test]
    fn a_frame_still_queued_keeps_its_bytes() {
        let mut arena = FrameArena::new();
        let body = vec![1u8; 100 * 1024];
        let kept = arena.frame(&message(&body));
        let copy = kept.to_vec();
        for _ in 0..(3 * CHUNKS * CHUNK / body.len()) {
            drop(arena.frame(&message(&[2u8; 100 * 1024])));
        }
        assert_eq!(&kept[..], &copy[..]);
    }

    #[test]
    fn a_frame_larger_than_a_chunk_gets_its_own() {
        let mut arena = FrameArena::new();
        let body = vec![3u8; CHUNK * 2];
        let f = arena.frame(&message(&body));
        assert_eq!(f.len(), message(&body).buffer_len());
    }
}
