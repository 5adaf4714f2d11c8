//! utcp's own lifecycle rules (resets, TIME-WAIT, the backlog) and every
//! mTCP error rule, over a MemLink: two real smoltcp stacks in this
//! process, no kernel in the path. The promises every transport keeps are
//! the lifecycle suite's, in `lifecycle.rs`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use conn_core::{Connection, Deadline, ErrorKind, Listener};
use conn_utcp::{MemLink, MemPort, SockId, Stack, TcpState, UtcpListener, UtcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 7000;
static NET: AtomicU32 = AtomicU32::new(1);

/// Two stacks on a fresh Ethernet link, in a subnet of their own.
fn pair() -> (Stack, Stack) {
    pair_on(MemLink::pair())
}

/// Two stacks on the two ends of `link`, in a subnet of their own.
fn pair_on(link: (MemPort, MemPort)) -> (Stack, Stack) {
    let n = NET.fetch_add(1, Ordering::Relaxed);
    let (a, b) = link;
    let server = Stack::builder(a)
        .address(format!("10.{n}.0.1/24").parse().unwrap())
        .build()
        .unwrap();
    let client = Stack::builder(b)
        .address(format!("10.{n}.0.2/24").parse().unwrap())
        .build()
        .unwrap();
    (server, client)
}

fn addr(stack: &Stack, port: u16) -> SocketAddr {
    SocketAddr::new(stack.address().unwrap().into(), port)
}

async fn connected(server: &Stack, client: &Stack) -> (UtcpListener, UtcpStream, UtcpStream) {
    let mut listener = UtcpListener::bind(server, PORT, 4).unwrap();
    let c = UtcpStream::connect(
        client,
        addr(server, PORT),
        Deadline::after(Duration::from_secs(5)),
    )
    .await
    .unwrap();
    let s = listener
        .accept(Deadline::after(Duration::from_secs(5)))
        .await
        .unwrap();
    (listener, c, s)
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

#[tokio::test]
async fn connect_accept_and_transfer_both_ways() {
    let (server, client) = pair();
    let (_l, mut c, mut s) = connected(&server, &client).await;
    assert_eq!(c.peer_addr(), addr(&server, PORT));
    assert_eq!(s.peer_addr(), c.local_addr());
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong").await.unwrap();
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mebibyte_each_way_arrives_intact_on_a_multi_thread_runtime() {
    let (server, client) = pair();
    one_mebibyte_each_way(&server, &client).await;
}

#[tokio::test]
async fn one_mebibyte_each_way_arrives_intact_over_an_ip_link() {
    // Medium::Ip (a TUN's): no Ethernet header, no ARP before the SYN.
    let (server, client) = pair_on(MemLink::pair_ip(1500));
    one_mebibyte_each_way(&server, &client).await;
}

async fn one_mebibyte_each_way(server: &Stack, client: &Stack) {
    let (_l, mut c, mut s) = connected(server, client).await;
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 + i / 251) as u8).collect();
    let expect = data.clone();
    let writer = tokio::spawn(async move {
        c.write_all(&data).await.unwrap();
        c.done(soon()).await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        back
    });
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert!(got == expect, "server received other bytes");
    s.write_all(&got).await.unwrap();
    s.close(soon()).await.unwrap();
    assert!(
        writer.await.unwrap() == expect,
        "client received other bytes"
    );
}

#[tokio::test]
async fn write_after_done_is_broken_pipe() {
    let (server, client) = pair();
    let (_l, mut c, _s) = connected(&server, &client).await;
    c.done(soon()).await.unwrap();
    let err = c.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
}

#[tokio::test]
async fn close_times_out_when_the_peer_never_ends_and_resets_it() {
    let (server, client) = pair();
    let (_l, c, mut s) = connected(&server, &client).await;
    let err = c
        .close(Deadline::after(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    // Released on failure with a reset: the server reads EOF (our FIN) and
    // then, writing, meets the reset.
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got).await;
    let mut reset = false;
    for _ in 0..50 {
        match s.write_all(b"x").await {
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);
                reset = true;
                break;
            }
            Ok(()) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(reset, "the peer never saw the reset");
}

#[tokio::test]
async fn drop_is_kill() {
    let (server, client) = pair();
    let (_l, c, mut s) = connected(&server, &client).await;
    drop(c);
    let err = s.read(&mut [0; 16]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn closing_an_already_terminated_connection_is_not_connected() {
    let (server, client) = pair();
    let (_l, c, mut s) = connected(&server, &client).await;
    c.abort();
    let _ = s.read(&mut [0; 1]).await; // wait for the reset
    let id = s.id();
    let err = s.close(soon()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConnected);
    assert_eq!(err.errno(), libc::ENOTCONN);
    // The id was freed anyway.
    let again = server.close(id, soon()).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::BadHandle);
}

#[tokio::test]
async fn closing_a_connection_both_sides_already_ended_in_order_is_ok() {
    let (server, client) = pair();
    let (_l, c, mut s) = connected(&server, &client).await;
    // The peer closes first; this side answers with its FIN (done), and
    // the peer's ACK of it takes this socket from LAST-ACK to CLOSED.
    let closing = tokio::spawn(async move { c.close(soon()).await });
    assert_eq!(s.read(&mut [0; 1]).await.unwrap(), 0, "the peer's FIN");
    s.done(soon()).await.unwrap();
    closing.await.unwrap().unwrap();
    while s.state().unwrap() != TcpState::Closed {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Nothing was reset: the close that is already done is no error.
    s.close(soon()).await.unwrap();
}

#[tokio::test]
async fn an_id_of_another_stack_is_wrong_context() {
    let (server, client) = pair();
    let (_l, c, _s) = connected(&server, &client).await;
    let err = server.close(c.id(), soon()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongContext);
    assert_eq!(err.errno(), libc::EACCES);
    assert_eq!(
        server.abort(c.id()).unwrap_err().kind(),
        ErrorKind::WrongContext
    );
    assert_eq!(
        server
            .accept(c.id(), Deadline::NOW)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::WrongContext
    );
}

#[tokio::test]
async fn an_unknown_or_closed_id_is_bad_handle() {
    let (server, _client) = pair();
    let unknown = SockId::from_u32((server.number() << 20) | 999);
    let err = server.close(unknown, Deadline::NOW).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BadHandle);
    assert_eq!(err.errno(), libc::EBADF);
    let id = UtcpListener::bind(&server, PORT, 1).unwrap().into_id();
    server.close(id, Deadline::NOW).await.unwrap();
    assert_eq!(
        server.close(id, Deadline::NOW).await.unwrap_err().kind(),
        ErrorKind::BadHandle
    );
    assert_eq!(server.abort(id).unwrap_err().kind(), ErrorKind::BadHandle);
}

#[tokio::test]
async fn a_call_for_the_other_socket_type_is_invalid_type() {
    let (server, client) = pair();
    let (l, _c, s) = connected(&server, &client).await;
    let err = server.accept(s.id(), Deadline::NOW).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidType);
    assert_eq!(err.errno(), libc::EINVAL);
    assert_eq!(
        server.abort(l.id()).unwrap_err().kind(),
        ErrorKind::InvalidType
    );
}

#[tokio::test]
async fn a_listener_can_be_closed_and_its_port_refuses_then() {
    let (server, client) = pair();
    let listener = UtcpListener::bind(&server, PORT, 2).unwrap();
    listener.close().unwrap();
    let err = UtcpStream::connect(&client, addr(&server, PORT), soon())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    // The port is free again.
    UtcpListener::bind(&server, PORT, 2).unwrap();
}

#[tokio::test]
async fn ids_of_closed_sockets_are_reused() {
    let (server, _client) = pair();
    let first = UtcpListener::bind(&server, PORT, 1).unwrap();
    let id = first.id();
    first.close().unwrap();
    let second = UtcpListener::bind(&server, PORT + 1, 1).unwrap();
    assert_eq!(second.id(), id);
}

#[tokio::test]
async fn connect_to_an_absent_host_times_out_at_its_deadline() {
    let (server, client) = pair();
    let nobody = SocketAddr::new("10.250.0.9".parse().unwrap(), PORT);
    let _ = server;
    let err = UtcpStream::connect(&client, nobody, Deadline::after(Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

#[tokio::test]
async fn the_backlog_holds_completed_handshakes_until_accepted_and_drops_syns_past_it() {
    let (server, client) = pair();
    let mut listener = UtcpListener::bind(&server, PORT, 3).unwrap();
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(
            UtcpStream::connect(&client, addr(&server, PORT), soon())
                .await
                .unwrap(),
        );
    }
    // A fourth finds the backlog full: its SYN is dropped, not refused, so
    // it waits (as a Linux client does) rather than fail at once.
    let err = UtcpStream::connect(
        &client,
        addr(&server, PORT),
        Deadline::after(Duration::from_millis(300)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(listener.accept(soon()).await.unwrap().peer_addr());
    }
    let mut expected: Vec<_> = clients.iter().map(|c| c.local_addr()).collect();
    peers.sort();
    expected.sort();
    assert_eq!(peers, expected);
    // Accepting made room again.
    UtcpStream::connect(&client, addr(&server, PORT), soon())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_side_closing_first_lingers_in_time_wait_and_the_port_is_reused() {
    let (server, client) = pair();
    let (listener, c, s) = connected(&server, &client).await;
    let closing =
        tokio::spawn(async move { s.close(Deadline::after(Duration::from_secs(5))).await });
    let c_id = c.id();
    // The client answers the server's FIN with its own.
    c.close(soon()).await.unwrap();
    closing.await.unwrap().unwrap();
    // Both ids are free; the server, which closed first, holds TIME-WAIT.
    assert_eq!(client.state(c_id).unwrap_err().kind(), ErrorKind::BadHandle);
    let mut waited = 0;
    while server.lingering() == 0 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(
        server.lingering(),
        1,
        "the first closer keeps its TIME-WAIT socket"
    );
    // The listening port serves a new connection (a new client port) at once.
    drop(listener);
    let (_l2, mut c2, mut s2) = connected(&server, &client).await;
    c2.write_all(b"again").await.unwrap();
    let mut buf = [0; 5];
    s2.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"again");
    assert_eq!(c2.state().unwrap(), TcpState::Established);
}

#[tokio::test]
async fn the_registry_binds_and_dials_utcp() {
    let (server, client) = pair();
    let mut servers = conn_core::Registry::new();
    conn_utcp::register(&mut servers, server.clone());
    let mut clients = conn_core::Registry::new();
    conn_utcp::register(&mut clients, client);
    let url = format!("utcp://{}:{}", server.address().unwrap(), PORT);
    let mut listener = servers.bind(&url).await.unwrap();
    assert_eq!(listener.local_endpoint().to_string(), url);
    let mut conn = clients.connect(&url, soon()).await.unwrap();
    let mut accepted = listener.accept(soon()).await.unwrap();
    conn.write_all(b"dyn").await.unwrap();
    let mut buf = [0; 3];
    accepted.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"dyn");
    let err = servers.bind("utcp://10.99.99.99:1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrNotAvailable);
}

#[tokio::test]
async fn the_connector_is_a_tower_service_of_uris() {
    use tower_service::Service;
    let (server, client) = pair();
    let mut listener = UtcpListener::bind(&server, 8080, 2).unwrap();
    let mut dial = conn_utcp::UtcpConnector::new(client);
    let uri: http::Uri = format!("http://{}:8080/x", server.address().unwrap())
        .parse()
        .unwrap();
    let conn = dial.call(uri).await.unwrap();
    let accepted = listener.accept(soon()).await.unwrap();
    assert_eq!(accepted.peer_addr(), conn.local_addr());
}

#[tokio::test]
async fn a_read_into_an_empty_buffer_returns_at_once() {
    let (server, client) = pair();
    let (_l, _c, mut s) = connected(&server, &client).await;
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut []))
        .await
        .expect("a zero-length read must not wait for data")
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn two_dual_stack_stacks_talk_over_ipv6_and_the_registry_names_the_v6_address() {
    dual_stacks_talk_over_ipv6(MemLink::pair()).await;
}

#[tokio::test]
async fn two_dual_stack_stacks_on_an_ip_link_talk_over_ipv6_without_ndp() {
    // smoltcp's Medium::Ip has no neighbours to discover: the SYN goes first.
    dual_stacks_talk_over_ipv6(MemLink::pair_ip(1500)).await;
}

/// Two dual-stack stacks on `link`: IPv6 through the registry, IPv4 on
/// the same listener, and what neither family can reach refused.
async fn dual_stacks_talk_over_ipv6(link: (MemPort, MemPort)) {
    let (a, b) = link;
    let server = Stack::builder(a)
        .address("10.66.0.1/24".parse().unwrap())
        .address_v6("fd66::1/64".parse().unwrap())
        .build()
        .unwrap();
    let client = Stack::builder(b)
        .address("10.66.0.2/24".parse().unwrap())
        .address_v6("fd66::2/64".parse().unwrap())
        .build()
        .unwrap();
    let mut servers = conn_core::Registry::new();
    conn_utcp::register(&mut servers, server.clone());
    let mut listener = servers.bind("utcp://[fd66::1]:80").await.unwrap();
    assert_eq!(listener.local_endpoint().to_string(), "utcp://[fd66::1]:80");
    // Neighbour discovery (on Ethernet), then the handshake, all over IPv6.
    let mut c = UtcpStream::connect(&client, "[fd66::1]:80".parse().unwrap(), soon())
        .await
        .unwrap();
    let mut s = listener.accept(soon()).await.unwrap();
    assert_eq!(
        s.peer_endpoint().unwrap().to_string(),
        format!("utcp://{}", c.local_addr())
    );
    assert!(c.local_addr().is_ipv6());
    c.write_all(b"over six").await.unwrap();
    let mut buf = [0; 8];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"over six");
    // The same listener takes IPv4 too: one port, both addresses.
    let v4 = UtcpStream::connect(&client, "10.66.0.1:80".parse().unwrap(), soon()).await;
    assert!(v4.is_ok(), "{v4:?}");
    // Neither a v6 bind on an address the stack lacks nor a v6 dial from
    // a v4-only stack gets through.
    let err = servers.bind("utcp://[fd99::1]:81").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrNotAvailable);
    let (x, _y) = MemLink::pair();
    let v4_only = Stack::builder(x)
        .address("10.67.0.1/24".parse().unwrap())
        .build()
        .unwrap();
    let err = UtcpStream::connect(&v4_only, "[fd66::1]:80".parse().unwrap(), soon())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrNotAvailable);
    drop((c, s));
}

#[tokio::test]
async fn stacks_with_only_ipv6_addresses_talk_and_refuse_ipv4() {
    for link in [MemLink::pair(), MemLink::pair_ip(1500)] {
        let (a, b) = link;
        let server = Stack::builder(a)
            .address_v6("fd68::1/64".parse().unwrap())
            .build()
            .unwrap();
        let client = Stack::builder(b)
            .address_v6("fd68::2/64".parse().unwrap())
            .build()
            .unwrap();
        assert_eq!((server.address(), server.cidr()), (None, None));
        let mut listener = UtcpListener::bind(&server, 80, 4).unwrap();
        assert_eq!(listener.local_endpoint().to_string(), "utcp://[fd68::1]:80");
        let mut c = UtcpStream::connect(&client, "[fd68::1]:80".parse().unwrap(), soon())
            .await
            .unwrap();
        let mut s = listener.accept(soon()).await.unwrap();
        c.write_all(b"six only").await.unwrap();
        let mut buf = [0; 8];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"six only");
        let err = UtcpStream::connect(&client, "10.68.0.1:80".parse().unwrap(), soon())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrNotAvailable);
    }
    let (a, _b) = MemLink::pair();
    let err = Stack::builder(a).build().unwrap_err();
    assert!(err.to_string().contains("an IPv4 or IPv6 address"), "{err}");
}
