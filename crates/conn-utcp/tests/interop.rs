//! Interop with the Linux kernel's TCP over a TAP device whose kernel side
//! sits in a network namespace each test makes for itself (needs root;
//! skips loudly otherwise).

mod common;

use std::net::SocketAddr;

use common::{
    KERNEL, KERNEL6, Net, STACK, STACK6, a_deleted_device_fails_accept_and_connect_and_resets,
    bytes_each_way_arrive_intact, curl_gets_a_page, every_flow_is_served_by_the_stack_that_owns_it,
    root_or_skip, soon,
};
use conn_core::Connection;
use conn_utcp::{Stack, StackGroup, UtcpListener, UtcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn kernel_addr(port: u16) -> SocketAddr {
    SocketAddr::new(KERNEL.parse().unwrap(), port)
}

#[tokio::test]
async fn kernel_client_talks_to_a_utcp_server() {
    if !root_or_skip("kernel_client_talks_to_a_utcp_server") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let mut listener = UtcpListener::bind(&stack, 8000, 4).unwrap();
    let client = net.kernel(|| async {
        let mut c = tokio::net::TcpStream::connect(format!("{STACK}:8000")).await?;
        c.write_all(b"hello from the kernel").await?;
        c.shutdown().await?;
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).await?;
        std::io::Result::Ok((answer, c.local_addr()?))
    });
    let mut s = listener.accept(soon()).await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"hello from the kernel");
    s.write_all(b"hello from utcp").await.unwrap();
    let peer = s.peer_addr();
    s.close(soon()).await.unwrap();
    let (answer, local) = client.await.unwrap().unwrap();
    assert_eq!(answer, b"hello from utcp");
    assert_eq!(peer, local);
}

/// The kernel's TCP_INFO options of `c` include timestamps (RFC 7323).
fn timestamps_on(c: &tokio::net::TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroes are a valid tcp_info; the kernel writes at most
    // `len` bytes into it and sets `len` to what it wrote.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: a live socket, a buffer of `len` bytes and its length.
    let rc = unsafe {
        libc::getsockopt(
            c.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    const TCPI_OPT_TIMESTAMPS: u8 = 1;
    info.tcpi_options & TCPI_OPT_TIMESTAMPS != 0
}

#[tokio::test]
async fn a_kernel_client_and_a_utcp_server_agree_on_timestamps() {
    if !root_or_skip("a_kernel_client_and_a_utcp_server_agree_on_timestamps") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let mut listener = UtcpListener::bind(&stack, 8000, 4).unwrap();
    // Two connections, so the second runs on a recycled socket too.
    for _ in 0..2 {
        let client = net.kernel(|| async {
            let mut c = tokio::net::TcpStream::connect(format!("{STACK}:8000")).await?;
            let mut byte = [0u8];
            c.read_exact(&mut byte).await?;
            std::io::Result::Ok(timestamps_on(&c))
        });
        let mut s = listener.accept(soon()).await.unwrap();
        s.write_all(b"x").await.unwrap();
        assert!(
            client.await.unwrap().unwrap(),
            "the kernel saw no timestamps on the handshake"
        );
        s.close(soon()).await.unwrap();
    }
}

#[tokio::test]
async fn curl_gets_a_page_from_a_utcp_server() {
    if !root_or_skip("curl_gets_a_page_from_a_utcp_server") {
        return;
    }
    let (net, stack) = Net::with_stack();
    curl_gets_a_page(&net, &stack, STACK).await;
}

#[tokio::test]
async fn utcp_client_talks_to_a_kernel_listener() {
    if !root_or_skip("utcp_client_talks_to_a_kernel_listener") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let (bound, is_bound) = tokio::sync::oneshot::channel();
    let server = net.kernel(|| async move {
        let listener = tokio::net::TcpListener::bind(format!("{KERNEL}:9000")).await?;
        bound.send(()).unwrap();
        let (mut s, peer) = listener.accept().await?;
        let mut got = Vec::new();
        s.read_to_end(&mut got).await?;
        s.write_all(&got).await?;
        s.write_all(b" back").await?;
        std::io::Result::Ok(peer)
    });
    is_bound.await.unwrap();
    let mut c = UtcpStream::connect(&stack, kernel_addr(9000), soon())
        .await
        .unwrap();
    c.write_all(b"echo").await.unwrap();
    c.done(soon()).await.unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"echo back");
    let local = c.local_addr();
    c.close(soon()).await.unwrap();
    assert_eq!(server.await.unwrap().unwrap(), local);
}

#[tokio::test]
async fn sixteen_mebibytes_each_way_arrive_intact() {
    if !root_or_skip("sixteen_mebibytes_each_way_arrive_intact") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let kernel = KERNEL.parse().unwrap();
    bytes_each_way_arrive_intact(&net, &stack, kernel, 9001, 16 << 20).await;
}

#[tokio::test]
async fn sixteen_mebibytes_each_way_arrive_intact_frame_by_frame_without_offloads() {
    if !root_or_skip("sixteen_mebibytes_each_way_arrive_intact_frame_by_frame_without_offloads") {
        return;
    }
    // The path a kernel that refuses TUNSETOFFLOAD leaves: MTU-sized
    // frames, checksums made and checked by the stack.
    let (net, mut taps) = Net::new(1);
    let tap = taps.pop().unwrap().without_offloads().unwrap();
    assert!(!tap.offloads());
    let stack = Stack::builder(tap)
        .address(format!("{STACK}/24").parse().unwrap())
        .build()
        .unwrap();
    let kernel = KERNEL.parse().unwrap();
    bytes_each_way_arrive_intact(&net, &stack, kernel, 9007, 16 << 20).await;
}

#[tokio::test]
async fn orderly_close_reaches_the_kernel_as_a_fin() {
    if !root_or_skip("orderly_close_reaches_the_kernel_as_a_fin") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let mut listener = UtcpListener::bind(&stack, 8001, 4).unwrap();
    let client = net.kernel(|| async {
        let mut c = tokio::net::TcpStream::connect(format!("{STACK}:8001")).await?;
        let n = c.read(&mut [0; 16]).await?; // the FIN: end-of-stream
        drop(c); // our own FIN ends the utcp side's close
        std::io::Result::Ok(n)
    });
    let s = listener.accept(soon()).await.unwrap();
    s.close(soon()).await.unwrap();
    assert_eq!(client.await.unwrap().unwrap(), 0);
}

#[tokio::test]
async fn kill_reaches_the_kernel_as_econnreset() {
    if !root_or_skip("kill_reaches_the_kernel_as_econnreset") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let mut listener = UtcpListener::bind(&stack, 8002, 4).unwrap();
    let client = net.kernel(|| async {
        let mut c = tokio::net::TcpStream::connect(format!("{STACK}:8002")).await?;
        c.read(&mut [0; 16]).await.map(|_| ())
    });
    let s = listener.accept(soon()).await.unwrap();
    s.kill();
    let err = client.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn ping_is_answered() {
    if !root_or_skip("ping_is_answered") {
        return;
    }
    let (net, _stack) = Net::with_stack();
    let out = net
        .exec(&["ping", "-c", "1", "-W", "5", STACK])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn curl_gets_a_page_over_ipv6_from_a_dual_stack_server() {
    if !root_or_skip("curl_gets_a_page_over_ipv6_from_a_dual_stack_server") {
        return;
    }
    let (net, stack, _) = Net::with_dual_stack();
    let (_, peer) = curl_gets_a_page(&net, &stack, &format!("[{STACK6}]")).await;
    assert_eq!(peer.ip(), KERNEL6.parse::<std::net::IpAddr>().unwrap());
}

#[tokio::test]
async fn four_mebibytes_each_way_over_ipv6_arrive_intact_with_offloads() {
    if !root_or_skip("four_mebibytes_each_way_over_ipv6_arrive_intact_with_offloads") {
        return;
    }
    let (net, stack, offloads) = Net::with_dual_stack();
    assert!(
        offloads,
        "this kernel takes TAP offloads; the test is of that path"
    );
    let kernel = KERNEL6.parse().unwrap();
    bytes_each_way_arrive_intact(&net, &stack, kernel, 9006, 4 << 20).await;
}

#[tokio::test]
async fn a_tap_deleted_under_the_stack_fails_accept_clearly_and_resets_its_connections() {
    if !root_or_skip(
        "a_tap_deleted_under_the_stack_fails_accept_clearly_and_resets_its_connections",
    ) {
        return;
    }
    let (net, stack) = Net::with_stack();
    a_deleted_device_fails_accept_and_connect_and_resets(&net, &stack).await;
}

#[tokio::test]
async fn a_stack_group_serves_every_flow_from_the_stack_that_owns_it() {
    if !root_or_skip("a_stack_group_serves_every_flow_from_the_stack_that_owns_it") {
        return;
    }
    let (net, taps) = Net::new(2);
    let group = StackGroup::from_taps(taps, format!("{STACK}/24").parse().unwrap()).unwrap();
    assert_eq!(group.stacks().len(), 2);
    let to = SocketAddr::new(STACK.parse().unwrap(), 8003);
    every_flow_is_served_by_the_stack_that_owns_it(&net, group.stacks(), to).await;
}

#[tokio::test]
async fn a_dual_stack_group_serves_every_ipv6_flow_from_the_stack_that_owns_it() {
    if !root_or_skip("a_dual_stack_group_serves_every_ipv6_flow_from_the_stack_that_owns_it") {
        return;
    }
    // Neighbour discovery crosses queues as ARP does (the exchange checks
    // that no SYN had to be sent again).
    let (net, taps) = Net::new(2);
    let stacks = net.dual_stack_group(taps);
    let to = SocketAddr::new(STACK6.parse().unwrap(), 8004);
    every_flow_is_served_by_the_stack_that_owns_it(&net, &stacks, to).await;
}
