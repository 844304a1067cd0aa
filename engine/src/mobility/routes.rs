//! Explicit routes (`[mobility] routes`): car trips a planner lists one by one, for surveys and counts
//! that give each vehicle's departure and path, on a city imported from OpenStreetMap. (On a SUMO
//! network, SUMO's own route files do this: `[mobility] sumo_routes`.)
//!
//! The file is CSV with the header `id,depart,via`:
//! - `id`: the vehicle's name, unique in the file;
//! - `depart`: its departure, a clock time (`07:30`) or a duration from midnight (`7.5h`);
//! - `via`: the OSM ids of road-graph nodes (junctions, ends of ways, signals) the vehicle passes, in
//!   order, separated by spaces: at least its origin and its destination. Between two consecutive nodes it
//!   takes the fastest route at free flow, as SUMO does between the edges of a trip's `via`; a file that
//!   lists every node of a path gives exactly that path.
//!
//! Errors name the file and the line: a node id that is not a node of the road graph, two consecutive
//! nodes without a route between them, a turn the road graph forbids where two legs meet.

use crate::city::graph::{Graph, LinkId, NodeId};
use crate::error::{InputError, InputResult};
use std::collections::HashSet;
use std::path::Path;

/// One vehicle of a route file, its route resolved on the road graph.
#[derive(Clone, Debug, PartialEq)]
pub struct ListedTrip {
    /// The `id` column.
    pub id: String,
    /// Departure (s after midnight).
    pub depart_s: f64,
    /// The route: the legs between consecutive `via` nodes, joined.
    pub route: Vec<LinkId>,
}

/// The columns of a route file.
const HEADER: [&str; 3] = ["id", "depart", "via"];

/// Reads a route file and resolves each row's route on `graph` with `route_of` (the fastest route from one
/// node to another, `None` where there is none). Errors name the file and the line.
pub fn read_routes(
    path: &Path,
    graph: &Graph,
    mut route_of: impl FnMut(NodeId, NodeId) -> Option<Vec<LinkId>>,
) -> InputResult<Vec<ListedTrip>> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path).map_err(|e| match e.kind() {
        csv::ErrorKind::Io(io) => InputError::file(path, io.to_string()),
        _ => InputError::file(path, e.to_string()),
    })?;
    let header = reader.headers().map_err(|e| InputError::new(path, "line 1", e.to_string()))?.clone();
    if header.iter().collect::<Vec<_>>() != HEADER {
        return Err(InputError::new(path, "line 1", format!("the header must be {}", HEADER.join(","))));
    }
    let node_of = graph.nodes_by_source();
    let mut seen = HashSet::new();
    let mut trips = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let line = format!("line {}", k + 2);
        let err = |m: String| InputError::new(path, &line, m);
        let r = record.map_err(|e| err(e.to_string()))?;
        let id = r[0].to_string();
        if id.is_empty() || !seen.insert(id.clone()) {
            return Err(err(format!("vehicle id {id:?} is empty or used twice")));
        }
        let depart_s = crate::scenario::duration_ms(&r[1]).map_err(|m| err(format!("depart: {m}")))? as f64 / 1000.0;
        let via = r[2]
            .split_whitespace()
            .map(|s| {
                let source: i64 = s.parse().map_err(|_| err(format!("via: {s:?} is not a node id")))?;
                node_of.get(&source).copied().ok_or_else(|| {
                    err(format!("via: node {source} is not a junction, way end or signal of the road graph"))
                })
            })
            .collect::<InputResult<Vec<NodeId>>>()?;
        if via.len() < 2 {
            return Err(err("via: give at least the origin and the destination node".into()));
        }
        let mut route: Vec<LinkId> = Vec::new();
        for pair in via.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let (from, to) = (graph.node(a).source_id, graph.node(b).source_id);
            if a == b {
                return Err(err(format!("via: node {from} follows itself")));
            }
            let leg = route_of(a, b).ok_or_else(|| err(format!("via: no route from node {from} to node {to}")))?;
            if let (Some(&last), Some(&first)) = (route.last(), leg.first()) {
                if !graph.turn_allowed(last, first) {
                    return Err(err(format!(
                        "via: at node {from} the route turns from way {} onto way {}, which a turn restriction forbids",
                        graph.link(last).source_id,
                        graph.link(first).source_id
                    )));
                }
            }
            route.extend(leg);
        }
        trips.push(ListedTrip { id, depart_s, route });
    }
    Ok(trips)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::city::routing::{Router, Weight};

    /// A 4×4 grid (node source ids y·4 + x, 100 m blocks) and a route file with `rows`.
    fn read(rows: &str) -> (Graph, InputResult<Vec<ListedTrip>>) {
        let graph = Graph::grid(4, 100.0, 1, 10.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.csv");
        std::fs::write(&path, format!("id,depart,via\n{rows}")).unwrap();
        let mut router = Router::new(&graph);
        let result = read_routes(&path, &graph, |a, b| router.route(a, b, Weight::TravelTime).map(|r| r.links));
        (graph, result)
    }

    fn nodes_of(graph: &Graph, route: &[LinkId]) -> Vec<i64> {
        let mut nodes = vec![graph.node(graph.link(route[0]).from).source_id];
        nodes.extend(route.iter().map(|&l| graph.node(graph.link(l).to).source_id));
        nodes
    }

    #[test]
    fn routes_pass_their_via_nodes_in_order() {
        let (graph, trips) = read("a,07:30,0 3\nb,8h,0 12 15\nc,08:00:30,0 1 5 6\n");
        let trips = trips.unwrap();
        assert_eq!(trips.len(), 3);
        assert_eq!((trips[0].id.as_str(), trips[0].depart_s), ("a", 27_000.0));
        assert_eq!(nodes_of(&graph, &trips[0].route), [0, 1, 2, 3]);
        // Up the west side, then along the north: through node 12, not a shortcut across the grid.
        assert_eq!(nodes_of(&graph, &trips[1].route), [0, 4, 8, 12, 13, 14, 15]);
        assert_eq!(trips[1].depart_s, 28_800.0);
        // Every node listed: exactly that path.
        assert_eq!(nodes_of(&graph, &trips[2].route), [0, 1, 5, 6]);
        assert_eq!(trips[2].depart_s, 28_830.0);
    }

    #[test]
    fn bad_rows_name_the_line_and_the_fault() {
        for (rows, fault) in [
            ("a,07:00,0 99\n", "node 99 is not a junction"),
            ("a,07:00,0 x\n", "\"x\" is not a node id"),
            ("a,07:00,0\n", "at least the origin and the destination"),
            ("a,soon,0 3\n", "depart"),
            ("a,07:00,0 3\na,08:00,3 0\n", "used twice"),
            ("a,07:00,0 0\n", "follows itself"),
        ] {
            let (_, result) = read(rows);
            let message = result.unwrap_err().to_string();
            let line = if rows.lines().count() == 2 { "line 3" } else { "line 2" };
            assert!(message.contains("routes.csv") && message.contains(line), "{rows}: {message}");
            assert!(message.contains(fault), "{rows}: {message}");
        }
    }

    #[test]
    fn a_wrong_header_is_refused() {
        let graph = Graph::grid(2, 100.0, 1, 10.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("routes.csv");
        std::fs::write(&path, "vehicle,time,nodes\na,07:00,0 1\n").unwrap();
        let message = read_routes(&path, &graph, |_, _| None).unwrap_err().to_string();
        assert!(message.contains("line 1") && message.contains("id,depart,via"), "{message}");
    }
}
