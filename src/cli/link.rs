//! The kernel side of the TAP or TUN device `connkit http --tap/--tun`
//! makes: its addresses and bringing it up, over rtnetlink (what
//! `ip addr add` and `ip link set up` send), so no `ip` command is needed.

use std::net::IpAddr;

use connkit::core::{Error, ErrorKind, Result};
use futures::TryStreamExt;
use rtnetlink::LinkUnspec;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};

/// Gives the interface `name` every address of `hosts` (address, prefix
/// length) and brings it up.
pub async fn configure(name: &str, hosts: &[(IpAddr, u8)]) -> Result<()> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| Error::io(e, "configure link", name))?;
    // The connection is the task that moves the requests' messages; it
    // ends when the handle is dropped, and is aborted below in any case.
    let connection = tokio::spawn(connection);
    let done = async {
        let link = handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute()
            .try_next()
            .await
            .map_err(|e| netlink_error(e, "find link", name))?
            .ok_or_else(|| Error::new(ErrorKind::NotFound).during("find link").on(name))?;
        let index = link.header.index;
        for &(ip, prefix) in hosts {
            let mut add = handle.address().add(index, ip, prefix);
            if ip.is_ipv6() {
                // No duplicate address detection (`ip addr add ... nodad`):
                // the device is new and its one peer is our own stack, and
                // until DAD ends the address is tentative, so the kernel
                // could not connect from it for a second or more.
                let message = add.message_mut();
                message.header.flags |= AddressHeaderFlags::Nodad;
                message
                    .attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            add.execute()
                .await
                .map_err(|e| netlink_error(e, "add address", format!("{ip}/{prefix} on {name}")))?;
        }
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| netlink_error(e, "set link up", name))
    }
    .await;
    connection.abort();
    done
}

/// The kernel's answer as an errno where it gave one (`EEXIST`, `EPERM`),
/// else the library's error as the detail.
fn netlink_error(e: rtnetlink::Error, op: &'static str, target: impl std::fmt::Display) -> Error {
    match e {
        rtnetlink::Error::NetlinkError(message) => Error::io(message.to_io(), op, target),
        other => Error::new(ErrorKind::Other)
            .during(op)
            .on(target)
            .detail(other.to_string()),
    }
}
