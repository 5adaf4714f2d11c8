//! `connkit http --listen utcp://A:PORT --tap NAME --tap-host CIDR` (or
//! `--tun NAME --tun-host CIDR`): the HTTP server on userspace stacks over
//! a TAP or TUN device the server creates, one function for both kinds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use connkit::core::{Endpoint, Error, ErrorKind, Result, serve};
use connkit::http::{Http, Stats};
use connkit::utcp::{Device, Ipv4Cidr, Ipv6Cidr, StackBuilder, StackGroup, Tap, Tun, UtcpListener};

use super::http::{app, per_core_server, say, say_report, shutdown_signal};

/// Which kind of device `connkit http` serves on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `--tap`: Ethernet frames; the stack answers ARP and NDP.
    Tap,
    /// `--tun`: bare IP packets, no link layer.
    Tun,
}

impl Kind {
    /// The flag that names the device, for messages.
    fn flag(self) -> &'static str {
        match self {
            Kind::Tap => "--tap",
            Kind::Tun => "--tun",
        }
    }

    fn during(self) -> &'static str {
        match self {
            Kind::Tap => "http --tap",
            Kind::Tun => "http --tun",
        }
    }
}

/// The addresses the flags give: the stack's (from `--listen`) and the
/// kernel side's (from `--tap-host`/`--tun-host`), per family, and the port.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub port: u16,
    /// The stack's IPv4 address and prefix, and the kernel side's address.
    pub v4: Option<(Ipv4Cidr, Ipv4Addr)>,
    /// The same for IPv6.
    pub v6: Option<(Ipv6Cidr, Ipv6Addr)>,
    /// Every `--tap-host`/`--tun-host`, as (address, prefix length).
    pub hosts: Vec<(IpAddr, u8)>,
}

impl Plan {
    /// Reads `listens` (one `utcp://` address per family, one port) and
    /// `hosts` (one `ADDR/PREFIX` per family, each family with a listen
    /// address of its own).
    pub fn parse(kind: Kind, listens: &[String], hosts: &[String]) -> Result<Plan> {
        let bad = |what: String| {
            Error::new(ErrorKind::InvalidType)
                .during(kind.during())
                .detail(what)
        };
        let host_flag = format!("{}-host", kind.flag());
        let mut port = None;
        let (mut stack4, mut stack6) = (None, None);
        for listen in listens {
            let endpoint = Endpoint::parse(listen)?;
            if endpoint.scheme() != "utcp" {
                return Err(bad(format!(
                    "{} serves utcp:// endpoints, e.g. utcp://10.7.0.2:8080 or utcp://[fd00::2]:8080, not {listen}",
                    kind.flag()
                )));
            }
            let addr: SocketAddr = endpoint.address().parse().map_err(|_| {
                bad(format!(
                    "--listen {listen}: utcp:// needs IPv4:port or [IPv6]:port"
                ))
            })?;
            if port.is_some_and(|p| p != addr.port()) {
                return Err(bad(
                    "every --listen address needs the same port: one listener serves both families"
                        .into(),
                ));
            }
            port = Some(addr.port());
            let slot_taken = match addr.ip() {
                IpAddr::V4(ip) => stack4.replace(ip).is_some(),
                IpAddr::V6(ip) => stack6.replace(ip).is_some(),
            };
            if slot_taken {
                return Err(bad(
                    "--listen takes at most one IPv4 and one IPv6 address (a stack has one of each)".into(),
                ));
            }
        }
        let (mut host4, mut host6) = (None, None);
        let mut all = Vec::new();
        for host in hosts {
            let parsed = host
                .split_once('/')
                .and_then(|(ip, prefix)| {
                    Some((ip.parse::<IpAddr>().ok()?, prefix.parse::<u8>().ok()?))
                })
                .filter(|(ip, prefix)| *prefix <= if ip.is_ipv4() { 32 } else { 128 });
            let Some((ip, prefix)) = parsed else {
                return Err(bad(format!(
                    "{host_flag} takes an address and prefix, e.g. 10.7.0.1/24 or fd00::1/64, not {host}"
                )));
            };
            let slot_taken = match ip {
                IpAddr::V4(ip) => host4.replace((ip, prefix)).is_some(),
                IpAddr::V6(ip) => host6.replace((ip, prefix)).is_some(),
            };
            if slot_taken {
                return Err(bad(format!(
                    "{host_flag} takes at most one IPv4 and one IPv6 address"
                )));
            }
            all.push((ip, prefix));
        }
        let v4 = pair(stack4, host4, "IPv4", &host_flag, &bad)?
            .map(|(stack, (host, prefix))| (Ipv4Cidr::new(stack, prefix), host));
        let v6 = pair(stack6, host6, "IPv6", &host_flag, &bad)?
            .map(|(stack, (host, prefix))| (Ipv6Cidr::new(stack, prefix), host));
        let Some(port) = port.filter(|_| v4.is_some() || v6.is_some()) else {
            return Err(bad(format!(
                "{} needs a utcp:// --listen address and a {host_flag}",
                kind.flag()
            )));
        };
        Ok(Plan {
            port,
            v4,
            v6,
            hosts: all,
        })
    }
}

/// A family's stack and host addresses, both or neither.
fn pair<S, H>(
    stack: Option<S>,
    host: Option<H>,
    family: &str,
    host_flag: &str,
    bad: &impl Fn(String) -> Error,
) -> Result<Option<(S, H)>> {
    match (stack, host) {
        (Some(s), Some(h)) => Ok(Some((s, h))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(bad(format!(
            "an {family} --listen address needs an {family} {host_flag} (the kernel side, its prefix the stack's)"
        ))),
        (None, Some(_)) => Err(bad(format!(
            "an {family} {host_flag} needs an {family} --listen address (the stack's, in the same prefix)"
        ))),
    }
}

/// Creates the `kind` device `name` in this namespace, gives the kernel
/// side every host address of `plan` and brings it up, then serves the
/// routes from a userspace stack at the plan's listen addresses (one
/// listener on its port takes both families) until SIGTERM or Ctrl-C,
/// with the same graceful shutdown as [`super::http::run`].
///
/// `per_core: Some(n)` opens n queues of the device and serves each from a
/// stack of its own, built and driven on its own thread's runtime (one
/// `StackGroup` stack per thread, mTCP's shape); `Some(0)` means one per
/// core. The device goes when the server ends.
pub async fn run(
    http: &Http,
    kind: Kind,
    name: &str,
    plan: Plan,
    drain: Duration,
    per_core: Option<usize>,
    json: bool,
) -> Result<()> {
    let server = per_core_server(per_core);
    let n = server.map_or(1, |s| s.threads());
    let queues: Vec<Device> = match kind {
        Kind::Tap => Tap::open_queues(name, n)?
            .into_iter()
            .map(Device::from)
            .collect(),
        Kind::Tun => Tun::open_queues(name, n)?
            .into_iter()
            .map(Device::from)
            .collect(),
    };
    super::link::configure(name, &plan.hosts).await?;
    // The group's builders come with one family's address; the other
    // family's, if any, is added to each.
    let builders = match (plan.v4, plan.v6) {
        (Some((cidr, _)), _) => StackGroup::builders(queues, cidr),
        (None, Some((cidr6, _))) => StackGroup::builders(queues, cidr6),
        (None, None) => unreachable!("Plan::parse insists on an address"),
    };
    let mut builders: Vec<StackBuilder> = builders
        .into_iter()
        .map(|mut b| {
            if let Some((cidr, gateway)) = plan.v4 {
                b = b.address(cidr).gateway(gateway);
            }
            if let Some((cidr6, gateway6)) = plan.v6 {
                b = b.address_v6(cidr6).gateway_v6(gateway6);
            }
            b
        })
        .collect();
    let hosts: Vec<String> = plan
        .hosts
        .iter()
        .map(|(ip, p)| format!("{ip}/{p}"))
        .collect();
    let stack_ips: Vec<IpAddr> = [
        plan.v4.map(|(c, _)| IpAddr::V4(c.address())),
        plan.v6.map(|(c, _)| IpAddr::V6(c.address())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let stack_addrs: Vec<String> = stack_ips.iter().map(IpAddr::to_string).collect();
    say(format_args!(
        "{} {name}: kernel side {}, userspace stack {} ({} queue{})",
        match kind {
            Kind::Tap => "tap",
            Kind::Tun => "tun",
        },
        hosts.join(" "),
        stack_addrs.join(" "),
        builders.len(),
        if builders.len() == 1 { "" } else { "s" }
    ));
    let endpoints: Vec<String> = stack_ips
        .iter()
        .map(|&ip| format!("utcp://{}", SocketAddr::new(ip, plan.port)))
        .collect();
    let listening = endpoints.join(" and ");
    let stats = Arc::new(Stats::default());
    let (app, health) = app(stats.clone());
    let handler = stats.count_connections(http.handler(app));
    // No handover over a TAP or TUN device: a sender dropped at once never fires.
    let signal = shutdown_signal(drain, health, tokio::sync::oneshot::channel::<i32>().1);
    let port = plan.port;
    let report = match server {
        None => {
            let stack = builders.pop().expect("one builder").build()?;
            let listener = UtcpListener::bind(&stack, port, connkit::utcp::DEFAULT_BACKLOG)?;
            say(format_args!("listening on {listening}"));
            serve(listener, handler)
                .with_graceful_shutdown(signal, drain)
                .await?
        }
        Some(server) => {
            say(format_args!(
                "listening on {listening} ({} threads, one stack and runtime each)",
                server.threads()
            ));
            server
                .serve_each_with(
                    builders,
                    // Built here, so this thread's runtime drives the stack.
                    move |builder: StackBuilder| {
                        let stack = builder.build()?;
                        UtcpListener::bind(&stack, port, connkit::utcp::DEFAULT_BACKLOG)
                    },
                    handler,
                )
                .with_graceful_shutdown(signal, drain)
                .await?
        }
    };
    say_report(report, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_listen_address_of_each_family_with_a_host_of_each_makes_a_dual_stack_plan() {
        let plan = Plan::parse(
            Kind::Tun,
            &strings(&["utcp://10.7.0.2:8080", "utcp://[fd00::2]:8080"]),
            &strings(&["fd00::1/64", "10.7.0.1/24"]),
        )
        .unwrap();
        assert_eq!(plan.port, 8080);
        assert_eq!(
            plan.v4,
            Some(("10.7.0.2/24".parse().unwrap(), "10.7.0.1".parse().unwrap()))
        );
        assert_eq!(
            plan.v6,
            Some(("fd00::2/64".parse().unwrap(), "fd00::1".parse().unwrap()))
        );
        assert_eq!(plan.hosts.len(), 2);
    }

    #[test]
    fn mismatched_flags_are_refused_saying_what_is_missing() {
        let err = |listens: &[&str], hosts: &[&str]| {
            Plan::parse(Kind::Tun, &strings(listens), &strings(hosts))
                .unwrap_err()
                .to_string()
        };
        let v4 = "utcp://10.7.0.2:8080";
        let e = err(&[v4, "utcp://[fd00::2]:8080"], &["10.7.0.1/24"]);
        assert!(
            e.contains("IPv6 --listen address needs an IPv6 --tun-host"),
            "{e}"
        );
        let e = err(&[v4], &["10.7.0.1/24", "fd00::1/64"]);
        assert!(e.contains("IPv6 --tun-host needs an IPv6 --listen"), "{e}");
        let e = err(
            &[v4, "utcp://[fd00::2]:8081"],
            &["10.7.0.1/24", "fd00::1/64"],
        );
        assert!(e.contains("same port"), "{e}");
        let e = err(&[v4], &["10.7.0.1"]);
        assert!(e.contains("--tun-host takes an address and prefix"), "{e}");
        let e = err(&["tcp://10.7.0.2:8080"], &["10.7.0.1/24"]);
        assert!(e.contains("utcp://"), "{e}");
        let e = err(&[], &[]);
        assert!(e.contains("needs a utcp:// --listen address"), "{e}");
    }

    #[test]
    fn an_ipv6_listen_address_with_an_ipv6_host_makes_an_ipv6_only_plan() {
        let plan = Plan::parse(
            Kind::Tap,
            &strings(&["utcp://[fd00::2]:8080"]),
            &strings(&["fd00::1/64"]),
        )
        .unwrap();
        assert_eq!((plan.port, plan.v4), (8080, None));
        assert_eq!(
            plan.v6,
            Some(("fd00::2/64".parse().unwrap(), "fd00::1".parse().unwrap()))
        );
    }
}
