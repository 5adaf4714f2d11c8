//! Where `connkit http`'s listeners come from: a predecessor's handover,
//! systemd's socket activation, or its own bind; and the copies it offers
//! a successor.

use std::os::fd::{AsFd, OwnedFd};

use connkit::core::activation::NamedFd;
use connkit::core::lifecycle::SplitListener;
use connkit::core::{BoxListener, Endpoint, Error, ErrorKind, Result};
use connkit::ipc::{IpcListener, SocketFileOwner};
use connkit::tcp::TcpListener;

/// One listener per serving thread, and what a successor would be offered.
#[derive(Debug)]
pub struct Listeners {
    /// One per thread, in thread order.
    pub listeners: Vec<BoxListener>,
    /// The endpoint they accept on, as the first one tells.
    pub endpoint: Endpoint,
    /// Copies of the distinct listening sockets, named by endpoint: what a
    /// successor takes (`SO_REUSEPORT` siblings each, a split copy not).
    pub offered: Vec<NamedFd>,
    /// The socket files these listeners remove when they go.
    pub files: SocketFiles,
}

/// Whether the listeners remove their socket files when they go: a server
/// that handed them over leaves them to its successor.
#[derive(Debug, Default)]
pub struct SocketFiles(Vec<SocketFileOwner>);

impl SocketFiles {
    /// The listeners went to a successor: leave their socket files to it.
    pub fn leave(&self) {
        self.0.iter().for_each(SocketFileOwner::leave);
    }

    /// This process owns its socket files again (after its confirmation).
    pub fn reclaim(&self) {
        self.0.iter().for_each(SocketFileOwner::reclaim);
    }
}

/// Handover and inherited descriptors pass kernel sockets: these schemes.
fn unsupported(endpoint: &Endpoint, op: &'static str) -> Error {
    Error::new(ErrorKind::NotSupported)
        .during(op)
        .on(endpoint)
        .detail("listeners are handed over and inherited for tcp:// and ipc:// only")
}

fn copy(fd: impl AsFd, name: &Endpoint, op: &'static str) -> Result<NamedFd> {
    let fd = fd
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::io(e, op, name))?;
    Ok(NamedFd {
        name: name.to_string(),
        fd,
    })
}

/// Binds `endpoint` for `threads` threads, as the registry's transports do
/// (`SO_REUSEPORT` siblings for tcp, split copies for ipc), keeping what a
/// handover needs.
pub fn bind(endpoint: &Endpoint, threads: usize) -> Result<Listeners> {
    let op = "bind";
    match endpoint.scheme() {
        "tcp" => {
            let first = if threads > 1 {
                TcpListener::options()
                    .reuse_port(true)
                    .bind(endpoint.address())?
            } else {
                TcpListener::bind(endpoint.address())?
            };
            let all = first.per_core(threads.max(1))?;
            let offered = all
                .iter()
                .map(|l| copy(l, l.endpoint(), op))
                .collect::<Result<_>>()?;
            Ok(serving(all, offered, SocketFiles::default()))
        }
        "ipc" => {
            let first = IpcListener::bind(endpoint.address())?;
            let offered = vec![copy(&first, first.endpoint(), op)?];
            let owners = first.socket_file_owner().into_iter().collect();
            let all = first.per_core(threads.max(1))?;
            Ok(serving(all, offered, SocketFiles(owners)))
        }
        _ => Err(unsupported(endpoint, op)),
    }
}

/// What adopted descriptors are taken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A predecessor's handover: each name must be the endpoint served, and
    /// the successor takes the socket files over (left until it confirmed).
    Predecessor,
    /// systemd: names are the unit's, and the socket files stay systemd's.
    Systemd,
}

/// Adopts inherited listening descriptors for `threads` threads: one each
/// when there are as many, else a single one split among them.
pub fn adopt(
    endpoint: &Endpoint,
    fds: Vec<NamedFd>,
    threads: usize,
    from: Origin,
) -> Result<Listeners> {
    let op = "adopt listeners";
    let threads = threads.max(1);
    if from == Origin::Predecessor
        && let Some(other) = fds.iter().find(|fd| !serves(endpoint, &fd.name))
    {
        return Err(Error::new(ErrorKind::InvalidType)
            .during(op)
            .on(endpoint)
            .detail(format!(
                "offered {}, but this process serves {endpoint}",
                other.name
            )));
    }
    if fds.len() != 1 && fds.len() != threads {
        return Err(Error::new(ErrorKind::InvalidType)
            .during(op)
            .on(endpoint)
            .detail(format!(
                "{} listening sockets for {threads} threads: serve with --per-core {} (or one socket)",
                fds.len(),
                fds.len()
            )));
    }
    let fds: Vec<OwnedFd> = fds.into_iter().map(|named| named.fd).collect();
    match endpoint.scheme() {
        "tcp" => {
            let adopted = fds
                .into_iter()
                .map(TcpListener::from_fd)
                .collect::<Result<Vec<_>>>()?;
            let offered = adopted
                .iter()
                .map(|l| copy(l, l.endpoint(), op))
                .collect::<Result<_>>()?;
            let all = match adopted.len() {
                1 => adopted.into_iter().next().expect("one").per_core(threads)?,
                _ => adopted,
            };
            Ok(serving(all, offered, SocketFiles::default()))
        }
        "ipc" => {
            let mut adopted = fds
                .into_iter()
                .map(IpcListener::from_fd)
                .collect::<Result<Vec<_>>>()?;
            let mut owners = Vec::new();
            if from == Origin::Predecessor {
                for listener in &mut adopted {
                    listener.own_socket_file()?;
                    if let Some(owner) = listener.socket_file_owner() {
                        // Not ours until the predecessor saw our Confirm.
                        owner.leave();
                        owners.push(owner);
                    }
                }
            }
            let offered = adopted
                .iter()
                .map(|l| copy(l, l.endpoint(), op))
                .collect::<Result<_>>()?;
            let all = match adopted.len() {
                1 => adopted.into_iter().next().expect("one").per_core(threads)?,
                _ => adopted,
            };
            Ok(serving(all, offered, SocketFiles(owners)))
        }
        _ => Err(unsupported(endpoint, op)),
    }
}

/// `all` served, one per thread, with the copies a successor is offered
/// and the socket files they remove.
fn serving<L>(all: Vec<L>, offered: Vec<NamedFd>, files: SocketFiles) -> Listeners
where
    L: connkit::core::Listener + 'static,
{
    let endpoint = connkit::core::Listener::local_endpoint(&all[0]);
    Listeners {
        listeners: all
            .into_iter()
            .map(|l| Box::new(l) as BoxListener)
            .collect(),
        endpoint,
        offered,
        files,
    }
}

/// Whether a listener offered as `name` is the one `--listen endpoint`
/// asks for: the same endpoint, or for a tcp port 0 ("any port") the same
/// host on the predecessor's port.
fn serves(endpoint: &Endpoint, name: &str) -> bool {
    let wanted = endpoint.to_string();
    if name == wanted {
        return true;
    }
    match wanted.strip_suffix(":0") {
        Some(host) if endpoint.scheme() == "tcp" => name
            .strip_prefix(host)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|port| port.parse::<u16>().is_ok()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successor_serves_only_the_endpoint_it_was_told_to() {
        let tcp = Endpoint::parse("tcp://127.0.0.1:8080").unwrap();
        assert!(serves(&tcp, "tcp://127.0.0.1:8080"));
        assert!(!serves(&tcp, "tcp://127.0.0.1:8081"));
        let any = Endpoint::parse("tcp://127.0.0.1:0").unwrap();
        assert!(serves(&any, "tcp://127.0.0.1:43210"));
        assert!(!serves(&any, "tcp://127.0.0.2:43210"));
        let ipc = Endpoint::parse("ipc:///run/app.sock").unwrap();
        assert!(serves(&ipc, "ipc:///run/app.sock"));
        assert!(!serves(&ipc, "ipc:///run/other.sock"));
    }
}
