use proptest::prelude::*;

use super::super::{Frame, Repr, WireError, frame_len};

fn roundtrip(repr: Repr<'_>) {
    let bytes = repr.to_vec();
    assert_eq!(bytes.len(), repr.buffer_len(), "{repr:?}");
    let frame = Frame::new_checked(&bytes[..]).expect("emitted frames are whole");
    assert_eq!(Repr::parse(&frame).expect("emitted frames parse"), repr);
}

#[test]
fn every_kind_roundtrips() {
    roundtrip(Repr::Connect {
        version: 1,
        priority: 3,
        membership: true,
        name: "alice",
    });
    roundtrip(Repr::Join { req: 1, group: "g" });
    roundtrip(Repr::Leave {
        req: u32::MAX,
        group: "g",
    });
    roundtrip(Repr::Multicast {
        service: 0x10,
        msg_type: -5,
        groups: (&["a", "#b#c"]).into(),
        payload: b"hi",
    });
    roundtrip(Repr::Disconnect);
    roundtrip(Repr::Welcome {
        private_group: "#a#local",
    });
    roundtrip(Repr::Reply {
        req: 0,
        code: 7,
        detail: "send secret",
    });
    roundtrip(Repr::Message {
        service: 2,
        msg_type: 1,
        sender: "#a#l",
        groups: (&["g"]).into(),
        payload: &[],
    });
    roundtrip(Repr::Membership {
        cause: 1,
        view: 9,
        group: "g",
        changed: "#a#l",
        members: (&["#a#l", "#b#l"]).into(),
    });
    roundtrip(Repr::Challenge { nonce: [7; 32] });
    roundtrip(Repr::Answer {
        nonce: [1; 32],
        mac: [0xfe; 32],
    });
    roundtrip(Repr::Proof { mac: [9; 32] });
}

#[test]
fn auth_frames_have_exactly_their_lengths() {
    // A challenge one byte short, one byte long: refused, never read past.
    for (kind, body) in [(20u8, 32usize), (6, 64), (21, 32)] {
        for len in [0, body - 1, body + 1] {
            let mut f = ((len + 1) as u32).to_be_bytes().to_vec();
            f.push(kind);
            f.extend(std::iter::repeat_n(0xaa, len));
            let got = Repr::parse(&Frame::new_checked(&f[..]).unwrap());
            let want = if len < body {
                WireError::Truncated
            } else {
                WireError::Trailing(1)
            };
            assert_eq!(got, Err(want), "kind {kind} with {len} bytes");
        }
    }
    // The fields land where they belong.
    let bytes = Repr::Answer {
        nonce: [1; 32],
        mac: [2; 32],
    }
    .to_vec();
    assert_eq!(&bytes[..5], &[0, 0, 0, 65, 6]);
    assert_eq!(
        (&bytes[5..37], &bytes[37..]),
        (&[1u8; 32][..], &[2u8; 32][..])
    );
}

#[test]
fn clear_errors_for_bad_bytes() {
    assert_eq!(frame_len(&[0, 0, 0, 0]), Err(WireError::BadLength(0)));
    assert_eq!(
        Frame::new_checked(&[0u8, 0, 0][..]).unwrap_err(),
        WireError::Truncated
    );
    let f = [0u8, 0, 0, 1, 99];
    assert_eq!(
        Repr::parse(&Frame::new_checked(&f[..]).unwrap()),
        Err(WireError::UnknownKind(99))
    );
    // A group count far beyond the body.
    let f = [0u8, 0, 0, 9, 4, 0, 0, 0, 2, 0, 1, 0xff, 0xff];
    assert_eq!(
        Repr::parse(&Frame::new_checked(&f[..]).unwrap()),
        Err(WireError::Truncated)
    );
    // A string longer than what follows.
    let f = [0u8, 0, 0, 3, 16, 5, b'a'];
    assert_eq!(
        Repr::parse(&Frame::new_checked(&f[..]).unwrap()),
        Err(WireError::Truncated)
    );
    // Bytes after a disconnect.
    let f = [0u8, 0, 0, 2, 5, 0];
    assert_eq!(
        Repr::parse(&Frame::new_checked(&f[..]).unwrap()),
        Err(WireError::Trailing(1))
    );
    assert!(
        WireError::BadLength(0)
            .to_string()
            .contains("frame length 0")
    );
}

/// Walks the name lists of an accepted frame: as many names as counted,
/// each within the frame.
fn every_name_reads(repr: &Repr<'_>) {
    if let Repr::Multicast { groups: names, .. }
    | Repr::Message { groups: names, .. }
    | Repr::Membership { members: names, .. } = repr
    {
        let read: Vec<String> = names.iter().map(str::to_owned).collect();
        assert_eq!(read.len(), names.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// Random bytes never panic the decoder; what it accepts re-emits to the same bytes.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = frame_len(&bytes);
        if let Ok(frame) = Frame::new_checked(&bytes[..]) {
            if let Ok(repr) = Repr::parse(&frame) {
                every_name_reads(&repr);
                prop_assert_eq!(repr.buffer_len(), bytes.len());
                prop_assert_eq!(repr.to_vec(), bytes.clone());
            }
        }
    }

    /// Random bodies behind a valid header, every kind: still no panic.
    #[test]
    fn random_bodies_never_panic(kind in 0u8..24, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        bytes.push(kind);
        bytes.extend_from_slice(&body);
        let frame = Frame::new_checked(&bytes[..]).unwrap();
        if let Ok(repr) = Repr::parse(&frame) {
            every_name_reads(&repr);
            prop_assert_eq!(repr.to_vec(), bytes.clone());
        }
    }
}
