use proptest::prelude::*;

use conn_core::wire::{Problem, Repr as _, WireError};

use super::super::{Frame, Repr, frame_len};

fn problem<T: std::fmt::Debug>(r: Result<T, WireError>) -> Problem {
    r.unwrap_err().problem().clone()
}

fn roundtrip(repr: Repr<'_>) {
    let bytes = repr.to_vec().unwrap();
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
            let got = problem(Repr::parse(&Frame::new_checked(&f[..]).unwrap()));
            let want = if len < body {
                Problem::Truncated {
                    at: 32 * (len / 32),
                }
            } else {
                Problem::Trailing(1)
            };
            assert_eq!(got, want, "kind {kind} with {len} bytes");
        }
    }
    // The fields land where they belong.
    let bytes = Repr::Answer {
        nonce: [1; 32],
        mac: [2; 32],
    }
    .to_vec()
    .unwrap();
    assert_eq!(&bytes[..5], &[0, 0, 0, 65, 6]);
    assert_eq!(
        (&bytes[5..37], &bytes[37..]),
        (&[1u8; 32][..], &[2u8; 32][..])
    );
}

#[test]
fn clear_errors_for_bad_bytes() {
    assert!(matches!(
        problem(frame_len(&[0, 0, 0, 0])),
        Problem::BadLength { len: 0, .. }
    ));
    let huge = ((super::super::MAX_FRAME_BODY + 1) as u32).to_be_bytes();
    assert!(matches!(
        problem(frame_len(&huge)),
        Problem::BadLength { .. }
    ));
    assert_eq!(
        problem(Frame::new_checked(&[0u8, 0, 0][..])),
        Problem::Truncated { at: 0 }
    );
    let f = [0u8, 0, 0, 1, 99];
    assert_eq!(
        problem(Repr::parse(&Frame::new_checked(&f[..]).unwrap())),
        Problem::UnknownKind(99)
    );
    // A group count far beyond the body.
    let f = [0u8, 0, 0, 9, 4, 0, 0, 0, 2, 0, 1, 0xff, 0xff];
    assert_eq!(
        problem(Repr::parse(&Frame::new_checked(&f[..]).unwrap())),
        Problem::Truncated { at: 8 }
    );
    // A string longer than what follows.
    let f = [0u8, 0, 0, 3, 16, 5, b'a'];
    let err = Repr::parse(&Frame::new_checked(&f[..]).unwrap()).unwrap_err();
    assert_eq!(err.problem(), &Problem::Truncated { at: 1 });
    assert_eq!(
        err.to_string(),
        "mailbox frame (welcome): truncated at byte 1 of the body"
    );
    // Bytes after a disconnect.
    let f = [0u8, 0, 0, 2, 5, 0];
    assert_eq!(
        problem(Repr::parse(&Frame::new_checked(&f[..]).unwrap())),
        Problem::Trailing(1)
    );
    assert_eq!(
        conn_core::Error::from(err).kind(),
        conn_core::ErrorKind::Protocol
    );
}

#[test]
fn emitting_a_name_over_255_bytes_is_an_error_not_a_panic() {
    let long = "g".repeat(256);
    let too_long = |r: Result<Vec<u8>, WireError>| {
        matches!(
            problem(r),
            Problem::TooLong {
                len: 256,
                max: 255,
                ..
            }
        )
    };
    assert!(too_long(
        Repr::Join {
            req: 1,
            group: &long
        }
        .to_vec()
    ));
    assert!(too_long(
        Repr::Multicast {
            service: 0x10,
            msg_type: 0,
            groups: (&["g", long.as_str()]).into(),
            payload: b"",
        }
        .to_vec()
    ));
    assert!(too_long(
        Repr::Membership {
            cause: 1,
            view: 1,
            group: "g",
            changed: &long,
            members: (&["#a#l"]).into(),
        }
        .to_vec()
    ));
    let mut short = [0u8; 4];
    assert!(matches!(
        problem(Repr::Disconnect.emit(&mut short)),
        Problem::NoRoom { need: 5, have: 4 }
    ));
}

#[test]
fn a_frame_the_daemon_cannot_emit_is_queued_as_a_refusal() {
    let long = "g".repeat(256);
    let refusal = Repr::Reply {
        req: 0,
        code: crate::error::Code::Protocol as u16,
        detail: "",
    };
    assert_eq!(
        &super::frame_bytes(&Repr::Welcome {
            private_group: &long
        })[..],
        &refusal.to_vec().unwrap()[..]
    );
    let welcome = Repr::Welcome {
        private_group: "#a#l",
    };
    assert_eq!(
        &super::frame_bytes(&welcome)[..],
        &welcome.to_vec().unwrap()[..]
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
        if let Ok(frame) = Frame::new_checked(&bytes[..])
            && let Ok(repr) = Repr::parse(&frame) {
                every_name_reads(&repr);
                prop_assert_eq!(repr.buffer_len(), bytes.len());
                prop_assert_eq!(repr.to_vec().unwrap(), bytes.clone());
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
            prop_assert_eq!(repr.to_vec().unwrap(), bytes.clone());
        }
    }
}
