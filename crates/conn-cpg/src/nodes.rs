//! The cluster's configured nodes, from corosync's configuration map.

use rust_corosync::CsError;
use rust_corosync::cmap::{self, Data, Map};

use crate::error::cs_error;

/// One node of the cluster as corosync's `nodelist` configures it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterNode {
    /// Its node id (`nodeid`), as [`Member::node`](crate::Member::node)
    /// names it.
    pub id: u32,
    /// Its `name`, or `node ID` when the nodelist gives none.
    pub name: String,
}

/// Every node in the local corosync's `nodelist`, by node id: the whole
/// cluster, up or down, which a group's membership (only the processes
/// there now) cannot tell. `ConnectionRefused` when no corosync runs here.
///
/// ```no_run
/// // Needs a running corosync on this node.
/// for node in conn_cpg::cluster_nodes()? {
///     println!("{} is node {}", node.name, node.id);
/// }
/// # Ok::<(), conn_core::Error>(())
/// ```
pub fn cluster_nodes() -> conn_core::Result<Vec<ClusterNode>> {
    let what = "nodelist";
    let handle = cmap::initialize(Map::Icmap).map_err(|e| cs_error(e, "read", what))?;
    let mut nodes = Vec::new();
    // The entries are numbered from 0 without gaps.
    for i in 0.. {
        let id = match cmap::get(&handle, &format!("nodelist.node.{i}.nodeid")) {
            Ok(data) => number(&data),
            Err(CsError::CsErrNotExist) => break,
            Err(e) => return Err(cs_error(e, "read", what)),
        };
        let Some(id) = id else { continue };
        let name = match cmap::get(&handle, &format!("nodelist.node.{i}.name")) {
            Ok(Data::String(name)) => name,
            _ => format!("node {id}"),
        };
        nodes.push(ClusterNode { id, name });
    }
    nodes.sort_by_key(|n| n.id);
    Ok(nodes)
}

/// A node id, whichever integer type the configuration stored it as.
fn number(data: &Data) -> Option<u32> {
    match *data {
        Data::UInt32(n) => Some(n),
        Data::UInt8(n) => Some(n.into()),
        Data::UInt16(n) => Some(n.into()),
        Data::UInt64(n) => u32::try_from(n).ok(),
        Data::Int32(n) => u32::try_from(n).ok(),
        Data::Int64(n) => u32::try_from(n).ok(),
        Data::String(ref s) => s.parse().ok(),
        _ => None,
    }
}
