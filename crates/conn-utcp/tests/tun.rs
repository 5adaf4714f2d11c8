//! Interop with the Linux kernel's TCP over a TUN device (bare IP
//! packets, smoltcp's `Medium::Ip`: no Ethernet, no ARP, no NDP) whose
//! kernel side sits in a network namespace each test makes for itself
//! (needs root; skips loudly otherwise). The exchanges are the TAP tests'
//! own (`common`), so the two devices are held to the same behaviour.

mod common;

use common::{
    KERNEL, KERNEL6, Net, STACK, STACK6, a_deleted_device_fails_accept_and_connect_and_resets,
    bytes_each_way_arrive_intact, curl_gets_a_page, every_flow_is_served_by_the_stack_that_owns_it,
    root_or_skip,
};
use std::net::SocketAddr;

use conn_core::ErrorKind;
use conn_utcp::{StackGroup, Tap, Tun};

#[tokio::test]
async fn curl_gets_a_page_over_ipv4_from_a_utcp_server_on_a_tun() {
    if !root_or_skip("curl_gets_a_page_over_ipv4_from_a_utcp_server_on_a_tun") {
        return;
    }
    let (net, stack, _) = Net::with_dual_stack_tun();
    let (_, peer) = curl_gets_a_page(&net, &stack, STACK).await;
    assert_eq!(peer.ip(), KERNEL.parse::<std::net::IpAddr>().unwrap());
}

#[tokio::test]
async fn curl_gets_a_page_over_ipv6_from_a_utcp_server_on_a_tun() {
    if !root_or_skip("curl_gets_a_page_over_ipv6_from_a_utcp_server_on_a_tun") {
        return;
    }
    let (net, stack, _) = Net::with_dual_stack_tun();
    let (_, peer) = curl_gets_a_page(&net, &stack, &format!("[{STACK6}]")).await;
    assert_eq!(peer.ip(), KERNEL6.parse::<std::net::IpAddr>().unwrap());
}

#[tokio::test]
async fn eight_mebibytes_each_way_over_ipv4_on_a_tun_arrive_intact_with_offloads() {
    if !root_or_skip("eight_mebibytes_each_way_over_ipv4_on_a_tun_arrive_intact_with_offloads") {
        return;
    }
    let (net, stack, offloads) = Net::with_dual_stack_tun();
    assert!(
        offloads,
        "this kernel takes TUN offloads; the test is of that path"
    );
    let kernel = KERNEL.parse().unwrap();
    bytes_each_way_arrive_intact(&net, &stack, kernel, 9101, 8 << 20).await;
}

#[tokio::test]
async fn four_mebibytes_each_way_over_ipv6_on_a_tun_arrive_intact_with_offloads() {
    if !root_or_skip("four_mebibytes_each_way_over_ipv6_on_a_tun_arrive_intact_with_offloads") {
        return;
    }
    let (net, stack, offloads) = Net::with_dual_stack_tun();
    assert!(
        offloads,
        "this kernel takes TUN offloads; the test is of that path"
    );
    let kernel = KERNEL6.parse().unwrap();
    bytes_each_way_arrive_intact(&net, &stack, kernel, 9106, 4 << 20).await;
}

#[tokio::test]
async fn a_tun_deleted_under_the_stack_fails_accept_clearly_and_resets_its_connections() {
    if !root_or_skip(
        "a_tun_deleted_under_the_stack_fails_accept_clearly_and_resets_its_connections",
    ) {
        return;
    }
    let (net, stack, _) = Net::with_dual_stack_tun();
    a_deleted_device_fails_accept_and_connect_and_resets(&net, &stack).await;
}

#[tokio::test]
async fn a_stack_group_on_a_tun_serves_every_flow_from_the_stack_that_owns_it() {
    if !root_or_skip("a_stack_group_on_a_tun_serves_every_flow_from_the_stack_that_owns_it") {
        return;
    }
    let (net, tuns) = Net::new_tun(2);
    let group = StackGroup::from_queues(tuns, format!("{STACK}/24").parse().unwrap()).unwrap();
    let to = SocketAddr::new(STACK.parse().unwrap(), 8003);
    every_flow_is_served_by_the_stack_that_owns_it(&net, group.stacks(), to).await;
}

#[tokio::test]
async fn a_dual_stack_group_on_a_tun_serves_every_ipv6_flow_from_the_stack_that_owns_it() {
    if !root_or_skip(
        "a_dual_stack_group_on_a_tun_serves_every_ipv6_flow_from_the_stack_that_owns_it",
    ) {
        return;
    }
    let (net, tuns) = Net::new_tun(2);
    let stacks = net.dual_stack_group(tuns);
    let to = SocketAddr::new(STACK6.parse().unwrap(), 8004);
    every_flow_is_served_by_the_stack_that_owns_it(&net, &stacks, to).await;
}

#[tokio::test]
async fn a_tun_cannot_take_a_name_a_tap_holds_and_says_so() {
    if !root_or_skip("a_tun_cannot_take_a_name_a_tap_holds_and_says_so") {
        return;
    }
    // In a namespace of its own, so the name is the test's alone.
    let (net, taps) = Net::new(1);
    let err = net
        .kernel({
            let name = net.dev.clone();
            // The TAP's queue lives here; the device moved into the
            // namespace, where the TUN is asked for by the same name.
            move || async move { Tun::open(&name).map(|_| ()) }
        })
        .await
        .unwrap()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("open tun") && text.contains(&net.dev) && text.contains("not a TUN device"),
        "{text}"
    );
    assert_ne!(err.kind(), ErrorKind::TimedOut);
    drop::<Vec<Tap>>(taps);
}
