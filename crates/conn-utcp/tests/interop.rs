//! Interop with the Linux kernel's TCP over a TAP device whose kernel side
//! sits in a network namespace each test makes for itself (needs root;
//! skips loudly otherwise).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{KERNEL, KERNEL6, Net, STACK, STACK6, checksum, pattern, root_or_skip};
use conn_core::{Connection, Deadline};
use conn_utcp::{Stack, StackGroup, UtcpListener, UtcpStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

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

#[tokio::test]
async fn curl_gets_a_page_from_a_utcp_server() {
    if !root_or_skip("curl_gets_a_page_from_a_utcp_server") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let mut listener = UtcpListener::bind(&stack, 8080, 4).unwrap();
    let server = tokio::spawn(async move {
        let mut s = listener.accept(soon()).await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nhello utcp\n",
        )
        .await
        .unwrap();
        s.close(soon()).await.unwrap();
        String::from_utf8(request).unwrap()
    });
    let out = net
        .exec(&[
            "curl",
            "-sS",
            "--max-time",
            "10",
            &format!("http://{STACK}:8080/page"),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello utcp\n");
    let request = server.await.unwrap();
    assert!(request.starts_with("GET /page HTTP/1.1\r\n"), "{request}");
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

const BULK: usize = 16 << 20;

#[tokio::test]
async fn sixteen_mebibytes_each_way_arrive_intact() {
    if !root_or_skip("sixteen_mebibytes_each_way_arrive_intact") {
        return;
    }
    let (net, stack) = Net::with_stack();
    let (bound, is_bound) = tokio::sync::oneshot::channel();
    // The kernel receives 16 MiB to EOF, then sends its own 16 MiB.
    let kernel = net.kernel(|| async move {
        let listener = tokio::net::TcpListener::bind(format!("{KERNEL}:9001")).await?;
        bound.send(()).unwrap();
        let (mut s, _) = listener.accept().await?;
        let mut got = Vec::with_capacity(BULK);
        s.read_to_end(&mut got).await?;
        s.write_all(&pattern(BULK, 2)).await?;
        s.shutdown().await?;
        std::io::Result::Ok((got.len(), checksum(&got)))
    });
    is_bound.await.unwrap();
    let c = UtcpStream::connect(&stack, kernel_addr(9001), soon())
        .await
        .unwrap();
    let (mut rd, mut wr) = tokio::io::split(c);
    let out = pattern(BULK, 1);
    let sent = checksum(&out);
    let writer = tokio::spawn(async move {
        wr.write_all(&out).await.unwrap();
        wr.shutdown().await.unwrap();
        wr
    });
    let mut back = Vec::with_capacity(BULK);
    rd.read_to_end(&mut back).await.unwrap();
    let wr = writer.await.unwrap();
    let (len, sum) = kernel.await.unwrap().unwrap();
    assert_eq!((len, sum), (BULK, sent), "utcp -> kernel");
    assert_eq!(back.len(), BULK, "kernel -> utcp");
    assert_eq!(
        checksum(&back),
        checksum(&pattern(BULK, 2)),
        "kernel -> utcp"
    );
    rd.unsplit(wr).close(soon()).await.unwrap();
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
    let mut listener = UtcpListener::bind(&stack, 8080, 4).unwrap();
    let server = tokio::spawn(async move {
        let mut s = listener.accept(soon()).await.unwrap();
        let peer = s.peer_addr();
        let mut request = Vec::new();
        let mut buf = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nv6\n")
            .await
            .unwrap();
        s.close(soon()).await.unwrap();
        peer
    });
    let out = net
        .exec(&[
            "curl",
            "-sS",
            "-g",
            "--max-time",
            "10",
            &format!("http://[{STACK6}]:8080/"),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"v6\n");
    let peer = server.await.unwrap();
    assert_eq!(peer.ip(), KERNEL6.parse::<std::net::IpAddr>().unwrap());
}

#[tokio::test]
async fn four_mebibytes_each_way_over_ipv6_arrive_intact_with_offloads() {
    if !root_or_skip("four_mebibytes_each_way_over_ipv6_arrive_intact_with_offloads") {
        return;
    }
    const LEN: usize = 4 << 20;
    let (net, stack, offloads) = Net::with_dual_stack();
    assert!(
        offloads,
        "this kernel takes TAP offloads; the test is of that path"
    );
    let (bound, is_bound) = tokio::sync::oneshot::channel();
    let kernel = net.kernel(|| async move {
        let listener = tokio::net::TcpListener::bind(format!("[{KERNEL6}]:9006")).await?;
        bound.send(()).unwrap();
        let (mut s, _) = listener.accept().await?;
        let mut got = Vec::with_capacity(LEN);
        s.read_to_end(&mut got).await?;
        s.write_all(&pattern(LEN, 4)).await?;
        s.shutdown().await?;
        std::io::Result::Ok((got.len(), checksum(&got)))
    });
    is_bound.await.unwrap();
    let to = SocketAddr::new(KERNEL6.parse().unwrap(), 9006);
    let c = UtcpStream::connect(&stack, to, soon()).await.unwrap();
    assert!(c.local_addr().is_ipv6());
    let (mut rd, mut wr) = tokio::io::split(c);
    let out = pattern(LEN, 3);
    let sent = checksum(&out);
    let writer = tokio::spawn(async move {
        wr.write_all(&out).await.unwrap();
        wr.shutdown().await.unwrap();
        wr
    });
    let mut back = Vec::with_capacity(LEN);
    rd.read_to_end(&mut back).await.unwrap();
    let wr = writer.await.unwrap();
    let (len, sum) = kernel.await.unwrap().unwrap();
    assert_eq!((len, sum), (LEN, sent), "utcp -> kernel");
    assert_eq!(
        (back.len(), checksum(&back)),
        (LEN, checksum(&pattern(LEN, 4))),
        "kernel -> utcp"
    );
    rd.unsplit(wr).close(soon()).await.unwrap();
}

#[tokio::test]
async fn a_tap_deleted_under_the_stack_fails_accept_clearly_and_resets_its_connections() {
    if !root_or_skip(
        "a_tap_deleted_under_the_stack_fails_accept_clearly_and_resets_its_connections",
    ) {
        return;
    }
    let (net, stack) = Net::with_stack();
    let mut listener = UtcpListener::bind(&stack, 8000, 4).unwrap();
    let client = net.kernel(|| async {
        let c = tokio::net::TcpStream::connect(format!("{STACK}:8000")).await?;
        tokio::time::sleep(Duration::from_secs(3)).await;
        std::io::Result::Ok(c)
    });
    let mut s = listener.accept(soon()).await.unwrap();
    let status = net
        .exec(&["ip", "link", "del", &net.tap])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "delete the TAP device");
    let err = listener.accept(soon()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&net.tap) && text.contains("went away"),
        "accept says which device went away: {text}"
    );
    assert_ne!(err.kind(), conn_core::ErrorKind::TimedOut, "{text}");
    let read = tokio::time::timeout(Duration::from_secs(5), s.read(&mut [0; 8]))
        .await
        .expect("a read on a stack without its device ends at once");
    assert_eq!(
        read.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    let err = UtcpStream::connect(&stack, kernel_addr(8001), soon())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("went away"), "{err}");
    drop(client);
}

#[tokio::test]
async fn a_stack_group_serves_every_flow_from_the_stack_that_owns_it() {
    if !root_or_skip("a_stack_group_serves_every_flow_from_the_stack_that_owns_it") {
        return;
    }
    let (net, taps) = Net::new(2);
    let group = StackGroup::from_taps(taps, format!("{STACK}/24").parse().unwrap()).unwrap();
    assert_eq!(group.stacks().len(), 2);
    // Every stack listens and echoes, tagging the answer with its number.
    for mut listener in group.listen(8003, 16).unwrap() {
        tokio::spawn(async move {
            loop {
                let Ok(mut s) = listener.accept(Deadline::NEVER).await else {
                    return;
                };
                let tag = s.stack().number();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).await.unwrap();
                    s.write_all(format!("{tag}:").as_bytes()).await.unwrap();
                    s.write_all(&got).await.unwrap();
                    s.close(soon()).await.unwrap();
                });
            }
        });
    }
    let numbers: Vec<u32> = group.stacks().iter().map(Stack::number).collect();
    // Sixteen concurrent flows: each one's segments must all reach the one
    // stack that owns its socket, or its exchange breaks with a reset.
    let answers = net
        .kernel(|| async {
            let mut tasks = Vec::new();
            for i in 0..16 {
                tasks.push(tokio::spawn(async move {
                    let mut c = tokio::net::TcpStream::connect(format!("{STACK}:8003")).await?;
                    c.write_all(format!("flow {i}").as_bytes()).await?;
                    c.shutdown().await?;
                    let mut answer = String::new();
                    c.read_to_string(&mut answer).await?;
                    std::io::Result::Ok(answer)
                }));
            }
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
            answers
        })
        .await
        .unwrap();
    let mut served = std::collections::BTreeSet::new();
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.unwrap();
        let (tag, body) = answer.split_once(':').unwrap();
        let tag: u32 = tag.parse().unwrap();
        assert!(numbers.contains(&tag), "{answer}");
        assert_eq!(body, format!("flow {i}"));
        served.insert(tag);
    }
    // The kernel spread the sixteen flows over both queues (by flow hash;
    // all on one queue would happen once in 2^15 runs).
    assert_eq!(served.len(), 2, "served by {served:?} only");
}
