//! Capacitated vehicle routing instances in the CVRPLIB format (the TSPLIB 95 format of Reinelt 1991 with
//! `CAPACITY` and `DEMAND_SECTION`, as the CVRPLIB library of Uchoa et al. 2017 publishes them): `EUC_2D`
//! coordinates, distances rounded to the nearest integer (TSPLIB's `nint`), one depot.

use crate::error::{InputError, InputResult};
use std::collections::BTreeMap;
use std::path::Path;

/// A CVRP: node 0 is the depot, nodes 1..n the customers; distances are symmetric.
#[derive(Clone, Debug, PartialEq)]
pub struct Cvrp {
    /// Instance name.
    pub name: String,
    /// The node numbers of the file, in the order of the nodes here (depot first).
    pub node_ids: Vec<u32>,
    /// Coordinates (the file's units).
    pub coords: Vec<(f64, f64)>,
    /// Demand per node (the depot's is 0).
    pub demand: Vec<u32>,
    /// Vehicle capacity.
    pub capacity: u32,
    /// Full distance matrix, row-major, `n × n`.
    dist: Vec<u32>,
}

impl Cvrp {
    /// A CVRP from coordinates (depot first), demands and a capacity, with TSPLIB `EUC_2D` distances.
    pub fn euclidean(name: &str, coords: Vec<(f64, f64)>, demand: Vec<u32>, capacity: u32) -> Cvrp {
        let n = coords.len();
        let mut dist = vec![0; n * n];
        for i in 0..n {
            for j in 0..n {
                let (dx, dy) = (coords[i].0 - coords[j].0, coords[i].1 - coords[j].1);
                dist[i * n + j] = ((dx * dx + dy * dy).sqrt() + 0.5) as u32;
            }
        }
        Cvrp { name: name.into(), node_ids: (1..=n as u32).collect(), coords, demand, capacity, dist }
    }

    /// A CVRP from a full distance matrix (row-major, `n × n`, depot first), demands and a capacity; the
    /// coordinates are left at zero. Distances should be symmetric (the dispatcher assumes so).
    pub fn from_matrix(name: &str, dist: Vec<u32>, demand: Vec<u32>, capacity: u32) -> Cvrp {
        let n = demand.len();
        assert_eq!(dist.len(), n * n, "an n × n matrix for n nodes");
        Cvrp {
            name: name.into(),
            node_ids: (1..=n as u32).collect(),
            coords: vec![(0.0, 0.0); n],
            demand,
            capacity,
            dist,
        }
    }

    /// Nodes, depot included.
    pub fn len(&self) -> usize {
        self.coords.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.coords.is_empty()
    }

    /// Distance from node `i` to node `j`.
    #[inline(always)]
    pub fn d(&self, i: usize, j: usize) -> u32 {
        self.dist[i * self.coords.len() + j]
    }

    /// Reads a CVRPLIB file. Errors name the file and the line.
    pub fn read(path: &Path) -> InputResult<Cvrp> {
        let text = std::fs::read_to_string(path).map_err(|e| InputError::io(path, e))?;
        Cvrp::parse(&text, path)
    }

    /// Parses the text of a CVRPLIB file; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> InputResult<Cvrp> {
        let mut header: BTreeMap<String, (usize, String)> = BTreeMap::new();
        let mut coords: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
        let mut demand: BTreeMap<u32, u32> = BTreeMap::new();
        let mut depots = Vec::new();
        let mut section = "";
        for (k, line) in text.lines().enumerate() {
            let err = |m: String| InputError::new(path, format!("line {}", k + 1), m);
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            match t {
                "NODE_COORD_SECTION" | "DEMAND_SECTION" | "DEPOT_SECTION" => {
                    section = match t {
                        "NODE_COORD_SECTION" => "coords",
                        "DEMAND_SECTION" => "demand",
                        _ => "depot",
                    };
                    continue;
                }
                "EOF" => break,
                _ => {}
            }
            if let Some((key, value)) = t.split_once(':') {
                if section.is_empty() || key.trim().chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    header.insert(key.trim().to_string(), (k + 1, value.trim().to_string()));
                    section = "";
                    continue;
                }
            }
            let fields: Vec<&str> = t.split_whitespace().collect();
            let num = |s: &str| s.parse::<f64>().map_err(|_| err(format!("{s:?} is not a number")));
            match section {
                "coords" => {
                    if fields.len() != 3 {
                        return Err(err(format!("expected `node x y`, found {t:?}")));
                    }
                    coords.insert(num(fields[0])? as u32, (num(fields[1])?, num(fields[2])?));
                }
                "demand" => {
                    if fields.len() != 2 {
                        return Err(err(format!("expected `node demand`, found {t:?}")));
                    }
                    let d = num(fields[1])?;
                    if d < 0.0 || d.fract() != 0.0 {
                        return Err(err(format!("demand {d} is not a whole number of units")));
                    }
                    demand.insert(num(fields[0])? as u32, d as u32);
                }
                "depot" => {
                    let id = num(fields[0])?;
                    if id >= 0.0 {
                        depots.push(id as u32);
                    }
                }
                _ => return Err(err(format!("unexpected line {t:?} outside any section"))),
            }
        }
        let key = |name: &str| header.get(name).map(|(line, v)| (*line, v.as_str()));
        let name = key("NAME").map_or_else(|| path.display().to_string(), |(_, v)| v.to_string());
        if let Some((line, kind)) = key("TYPE") {
            if kind != "CVRP" {
                return Err(InputError::new(
                    path,
                    format!("line {line}"),
                    format!("TYPE {kind}: only CVRP is supported"),
                ));
            }
        }
        match key("EDGE_WEIGHT_TYPE") {
            Some((_, "EUC_2D")) => {}
            Some((line, other)) => {
                return Err(InputError::new(
                    path,
                    format!("line {line}"),
                    format!("EDGE_WEIGHT_TYPE {other}: only EUC_2D is supported"),
                ))
            }
            None => return Err(InputError::new(path, "header", "no EDGE_WEIGHT_TYPE (EUC_2D expected)")),
        }
        let (cap_line, cap) = key("CAPACITY").ok_or_else(|| InputError::new(path, "header", "no CAPACITY"))?;
        let capacity: u32 = cap
            .parse()
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| InputError::new(path, format!("line {cap_line}"), format!("CAPACITY {cap:?}")))?;
        if let Some((line, dim)) = key("DIMENSION") {
            if dim.parse::<usize>().ok() != Some(coords.len()) {
                return Err(InputError::new(
                    path,
                    format!("line {line}"),
                    format!("DIMENSION {dim} but {} nodes in NODE_COORD_SECTION", coords.len()),
                ));
            }
        }
        let depot = match depots.as_slice() {
            [d] => *d,
            [] => return Err(InputError::new(path, "DEPOT_SECTION", "no depot")),
            _ => return Err(InputError::new(path, "DEPOT_SECTION", "more than one depot is not supported")),
        };
        if !coords.contains_key(&depot) {
            return Err(InputError::new(path, "DEPOT_SECTION", format!("depot {depot} has no coordinates")));
        }
        let mut ids: Vec<u32> = vec![depot];
        ids.extend(coords.keys().copied().filter(|&i| i != depot));
        let mut dem = Vec::with_capacity(ids.len());
        for &i in &ids {
            let d = *demand
                .get(&i)
                .ok_or_else(|| InputError::new(path, "DEMAND_SECTION", format!("node {i} has no demand")))?;
            if d > capacity {
                return Err(InputError::new(
                    path,
                    "DEMAND_SECTION",
                    format!("node {i} demands {d}, more than a vehicle's capacity {capacity}"),
                ));
            }
            dem.push(if i == depot { 0 } else { d });
        }
        let mut cvrp = Cvrp::euclidean(&name, ids.iter().map(|i| coords[i]).collect(), dem, capacity);
        cvrp.node_ids = ids;
        Ok(cvrp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "NAME : tiny\nTYPE : CVRP\nDIMENSION : 4\nEDGE_WEIGHT_TYPE : EUC_2D\nCAPACITY : 10\n\
        NODE_COORD_SECTION\n1 0 0\n2 3 4\n3 0 10\n4 -6 8\nDEMAND_SECTION\n1 0\n2 5\n3 5\n4 6\nDEPOT_SECTION\n1\n-1\nEOF\n";

    #[test]
    fn reads_cvrplib_with_tsplib_distances() {
        let p = Cvrp::parse(SMALL, Path::new("tiny.vrp")).unwrap();
        assert_eq!((p.len(), p.capacity, p.name.as_str()), (4, 10, "tiny"));
        assert_eq!(p.d(0, 1), 5);
        assert_eq!(p.d(1, 2), 7, "nint(sqrt(9 + 36)) = nint(6.708)");
        assert_eq!(p.demand, vec![0, 5, 5, 6]);
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = Cvrp::parse(&SMALL.replace("EUC_2D", "GEO"), Path::new("t.vrp")).unwrap_err().to_string();
        assert!(e.contains("t.vrp") && e.contains("line 4") && e.contains("only EUC_2D"), "{e}");
        let e = Cvrp::parse(&SMALL.replace("3 0 10", "3 0 ten"), Path::new("t.vrp")).unwrap_err().to_string();
        assert!(e.contains("line 9") && e.contains("\"ten\""), "{e}");
        let e = Cvrp::parse(&SMALL.replace("4 6\n", "4 16\n"), Path::new("t.vrp")).unwrap_err().to_string();
        assert!(e.contains("more than a vehicle's capacity"), "{e}");
    }
}
