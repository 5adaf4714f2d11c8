//! MemLink rows: two smoltcp stacks on one thread vs kernel loopback, and
//! the socket-count rows (10,000 idle or TIME-WAIT connections held).

use super::*;

/// Two stacks on one MemLink (`10.0.9.1` serving port 5000, `10.0.9.2`
/// dialling), `mtu` and `buffer` bytes each way for each connection.
pub(super) fn mem_stacks(mtu: usize, buffer: usize) -> (Stack, Stack, UtcpListener) {
    let (a, b) = MemLink::pair_with_mtu(mtu);
    let server = Stack::builder(a)
        .address("10.0.9.1/24".parse().unwrap())
        .buffers(buffer, buffer)
        .build()
        .unwrap();
    let client = Stack::builder(b)
        .address("10.0.9.2/24".parse().unwrap())
        .buffers(buffer, buffer)
        .build()
        .unwrap();
    let listener = UtcpListener::bind(&server, 5000, 64).unwrap();
    (server, client, listener)
}

pub(super) const MEM_SERVER: &str = "10.0.9.1:5000";
/// The socket-count rows' link: Ethernet's MTU.
pub(super) const MEM_MTU: usize = 1514;

/// A connection from `client` and its accepted end on `listener`.
pub(super) async fn mem_pair(
    client: &Stack,
    listener: &mut UtcpListener,
) -> (UtcpStream, UtcpStream) {
    let to: SocketAddrV4 = MEM_SERVER.parse().unwrap();
    let c = UtcpStream::connect(client, to.into(), soon())
        .await
        .unwrap();
    let s = listener.accept(soon()).await.unwrap();
    (c, s)
}

pub(super) async fn memlink(rows: &mut Vec<Row>, costs: &mut Costs) {
    // Kernel loopback's MTU is 64 KiB; give the link the same.
    let (_server, client, ul) = mem_stacks(65535, 256 * 1024);
    let ul = tokio::sync::Mutex::new(ul);
    let kl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let kaddr = kl.local_addr().unwrap();
    let upair = || async { mem_pair(&client, &mut *ul.lock().await).await };
    let kpair = || async {
        let c = TcpStream::connect(kaddr).await.unwrap();
        c.set_nodelay(true).unwrap();
        let (s, _) = kl.accept().await.unwrap();
        s.set_nodelay(true).unwrap();
        (c, s)
    };

    // One workload (generic over the stream) on a fresh pair of each kind.
    macro_rules! on_both {
        ($work:ident) => {
            medians(
                alternate(
                    || async {
                        let (c, s) = upair().await;
                        $work(c, s).await
                    },
                    || async {
                        let (c, s) = kpair().await;
                        $work(c, s).await
                    },
                )
                .await,
            )
        };
    }

    let (o, p) = on_both!(bulk);
    rows.push(Row {
        what: "MemLink vs loopback: bulk 16 MiB".into(),
        ours: o,
        peer: p,
        unit: "MiB/s",
        goal: "none stated".into(),
        met: true,
    });

    let (o, p) = on_both!(rr);
    rows.push(Row {
        what: "MemLink vs loopback: 64 B request/response".into(),
        ours: o,
        peer: p,
        unit: "req/s",
        goal: "ahead of loopback (>1)".into(),
        met: o > p,
    });

    let (o, p) = alternate(
        || async {
            let (before, start) = (usage(), Instant::now());
            for _ in 0..CONNS {
                let (c, s) = upair().await;
                let (a, b) = tokio::join!(c.close(soon()), s.close(soon()));
                a.unwrap();
                b.unwrap();
            }
            Run::since(before, f64::from(CONNS), start.elapsed().as_secs_f64())
        },
        || async {
            let (before, start) = (usage(), Instant::now());
            for _ in 0..CONNS {
                let (c, s) = kpair().await;
                tokio::join!(close_raw(c), close_raw(s));
            }
            Run::since(before, f64::from(CONNS), start.elapsed().as_secs_f64())
        },
    )
    .await;
    let (o, p) = (Run::median(&o), Run::median(&p));
    let what = "MemLink vs loopback: connect + close both ends";
    rows.push(Row {
        what: what.into(),
        ours: o.rate,
        peer: p.rate,
        unit: "conn/s",
        goal: ">= 1.0".into(),
        met: o.rate >= p.rate,
    });
    costs.add(what, o, p);
}

/// What the loaded pair of stacks holds in a socket-count row.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Held {
    Idle,
    TimeWait,
}

/// 64-byte request/response on a pair of stacks holding `held()`
/// connections (idle, or in TIME-WAIT), against an identical pair holding
/// none, alternating round by round. Two pairs rather than one pair before
/// and after: TIME-WAIT lasts 10 s, too short to hold for every "with"
/// round and too long to wait out before every "without" round.
pub(super) async fn socket_count(rows: &mut Vec<Row>) {
    // 4 KiB each way, so 10,000 connections (20,000 sockets) take 160 MB.
    const BUF: usize = 4096;
    // Each round's time: all 2 x rounds() of them, after the fill, must
    // end inside the first connection's 10 s of TIME-WAIT.
    let slot = window() * 2 / 5;
    for kind in [Held::Idle, Held::TimeWait] {
        let (_base_server, base_client, base_l) = mem_stacks(MEM_MTU, BUF);
        let (loaded_server, loaded_client, mut loaded_l) = mem_stacks(MEM_MTU, BUF);
        let filling = Instant::now();
        let mut idle = Vec::new();
        for _ in 0..held() {
            let (c, mut s) = mem_pair(&loaded_client, &mut loaded_l).await;
            match kind {
                Held::Idle => idle.push((c, s)),
                Held::TimeWait => {
                    // The client, whose rate `rr` measures, closes first
                    // and keeps the TIME-WAIT; the server closes when it
                    // reads the client's FIN.
                    let server = async move {
                        let _ = s.read(&mut [0u8; 1]).await;
                        s.close(soon()).await.unwrap();
                    };
                    let (closed, ()) = tokio::join!(c.close(soon()), server);
                    closed.unwrap();
                }
            }
        }
        // The server's last ACKs, then nothing lingers there.
        let settle = Instant::now();
        while loaded_server.lingering() > 0 && settle.elapsed() < Duration::from_secs(2) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let check = |when: &str| match kind {
            Held::Idle => {
                assert!(
                    idle.iter()
                        .all(|(c, s)| c.state().unwrap() == TcpState::Established
                            && s.state().unwrap() == TcpState::Established),
                    "{when}: every held connection established"
                );
            }
            Held::TimeWait => {
                // Every client connection read the server's FIN, and the
                // server's sockets are all CLOSED (each had the client's
                // last ACK), so nothing on the client is in FIN-WAIT: what
                // lingers there is in TIME-WAIT.
                assert_eq!(
                    loaded_server.lingering(),
                    0,
                    "{when}: server sockets closed"
                );
                assert_eq!(
                    loaded_client.lingering(),
                    held(),
                    "{when}: client connections in TIME-WAIT"
                );
            }
        };
        check("before measuring");
        eprintln!(
            "utcp bench: {} connections {} in {:.1} s",
            held(),
            if kind == Held::Idle {
                "held idle"
            } else {
                "put in TIME-WAIT"
            },
            filling.elapsed().as_secs_f64()
        );
        let (base_l, loaded_l) = (
            tokio::sync::Mutex::new(base_l),
            tokio::sync::Mutex::new(loaded_l),
        );
        let (with, without) = medians(
            alternate(
                || async {
                    let (c, s) = mem_pair(&loaded_client, &mut *loaded_l.lock().await).await;
                    rr_until(c, s, |_, taken| taken < slot).await
                },
                || async {
                    let (c, s) = mem_pair(&base_client, &mut *base_l.lock().await).await;
                    rr_until(c, s, |_, taken| taken < slot).await
                },
            )
            .await,
        );
        // Still all there: none expired (or closed) while measured.
        check("after measuring");
        drop(idle);
        rows.push(Row {
            what: format!(
                "MemLink 64 B request/response: {} held {} vs none",
                held(),
                if kind == Held::Idle {
                    "idle established"
                } else {
                    "in TIME-WAIT (client closed)"
                }
            ),
            ours: with,
            peer: without,
            unit: "req/s",
            goal: ">= 0.9".into(),
            met: with >= 0.9 * without,
        });
    }
}
