//! A plausible distribution grid for a city that has no grid data, built from its buildings and streets
//! (the approach of reference-network models such as Mateo Domingo et al. 2011, "A reference network
//! model for large-scale distribution planning with automatic street map generation", IEEE Trans. Power
//! Systems 26(1), much simplified):
//!
//! 1. each building gets a diversified peak demand from its floor area and use ([`SynthesisParams`]);
//! 2. buildings are grouped into LV districts by weighted k-means on their centroids, as many as needed
//!    for each district's peak to fit a standard MV/LV transformer at the planning utilisation;
//! 3. each district's substation sits at the street junction nearest its load centre, with the smallest
//!    standard transformer that carries its peak;
//! 4. LV cables follow the streets: the shortest-path tree from the substation over the street graph to the
//!    junction nearest each building, then a service cable to the building;
//! 5. MV cables follow the streets from one primary substation (the external grid, at the junction nearest
//!    the city's load centre) to every MV/LV substation, as a radial tree (how meshed MV grids are operated).
//!
//! Standard equipment comes from pandapower's standard types (cited per item). The result is a [`Network`]
//! plus the geometry of every bus and branch, exportable as GeoJSON ([`SynthesisedGrid::to_geojson`]).

use super::network::{Bus, Injection, InjectionKind, LineType, Network, TrafoType, VoltageControl};
use crate::city::City;
use crate::import::tags::BuildingUse;
use glam::Vec2;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Rules and defaults of the synthesis, each with its source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthesisParams {
    /// Diversified peak demand of dwellings (W per m² of floor area): 20 W/m², i.e. 1.5 kW for a 75 m²
    /// dwelling, the after-diversity design load per household without electric heating of VDE-AR-N 4100
    /// / DIN 18015-1 planning for large groups of households.
    pub residential_w_per_m2: f64,
    /// Offices, education, health, public buildings (W/m²): 30 W/m², CIBSE Guide F (2012) typical
    /// electrical peak of offices (25–40 W/m²).
    pub commercial_w_per_m2: f64,
    /// Shops and hospitality (W/m²): 50 W/m², CIBSE Guide F retail and catering (lighting, refrigeration).
    pub retail_w_per_m2: f64,
    /// Industry, parking and anything else (W/m²): 15 W/m².
    pub other_w_per_m2: f64,
    /// Power factor of the loads: 0.95 (inductive), the usual minimum in distribution codes.
    pub power_factor: f64,
    /// Largest share of a transformer's rating a district's peak may take when planned: 0.7, leaving
    /// margin for growth and N-1 switching (common DSO planning practice).
    pub transformer_utilisation: f64,
    /// MV voltage (kV): 20 kV, the most common European MV level (Andorra's FEDA and Monaco's SMEG both
    /// distribute at 20 kV).
    pub mv_kv: f64,
    /// LV voltage (kV): 0.4 kV.
    pub lv_kv: f64,
    /// Voltage set at the primary substation's MV busbar (pu): 1.02, a typical on-load tap changer target.
    pub primary_vm_pu: f64,
    /// Largest straight-line distance (m) from an LV district's load centre to its buildings: 250 m, so
    /// that feeders along the streets stay within the 300–500 m that keeps the voltage drop of a 0.4 kV
    /// cable within a few percent (usual LV planning rule).
    pub max_lv_radius_m: f64,
}

impl Default for SynthesisParams {
    fn default() -> Self {
        SynthesisParams {
            residential_w_per_m2: 20.0,
            commercial_w_per_m2: 30.0,
            retail_w_per_m2: 50.0,
            other_w_per_m2: 15.0,
            power_factor: 0.95,
            transformer_utilisation: 0.7,
            mv_kv: 20.0,
            lv_kv: 0.4,
            primary_vm_pu: 1.02,
            max_lv_radius_m: 250.0,
        }
    }
}

/// pandapower standard type `NAYY 4x150 SE` (0.6/1 kV aluminium cable): LV feeders and service cables.
pub fn lv_cable() -> LineType {
    LineType {
        name: "NAYY 4x150 SE".into(),
        r_ohm_per_km: 0.208,
        x_ohm_per_km: 0.08,
        c_nf_per_km: 261.0,
        g_us_per_km: 0.0,
        max_i_ka: 0.27,
    }
}

/// pandapower standard type `NA2XS2Y 1x185 RM/25 12/20 kV` (XLPE aluminium cable): MV feeders.
pub fn mv_cable() -> LineType {
    LineType {
        name: "NA2XS2Y 1x185 RM/25 12/20 kV".into(),
        r_ohm_per_km: 0.161,
        x_ohm_per_km: 0.117,
        c_nf_per_km: 273.0,
        g_us_per_km: 0.0,
        max_i_ka: 0.362,
    }
}

/// pandapower standard MV/LV transformer types (20/0.4 kV, Dyn5): 0.25, 0.4 and 0.63 MVA.
pub fn mv_lv_transformers() -> Vec<TrafoType> {
    let t = |name: &str, sn: f64, vkr: f64, pfe: f64, i0: f64| TrafoType {
        name: name.into(),
        sn_mva: sn,
        vn_hv_kv: 20.0,
        vn_lv_kv: 0.4,
        vk_percent: 6.0,
        vkr_percent: vkr,
        pfe_kw: pfe,
        i0_percent: i0,
        shift_degree: 150.0,
    };
    vec![
        t("0.25 MVA 20/0.4 kV", 0.25, 1.44, 0.8, 0.32),
        t("0.4 MVA 20/0.4 kV", 0.4, 1.425, 1.35, 0.3375),
        t("0.63 MVA 20/0.4 kV", 0.63, 1.206, 1.65, 0.2619),
    ]
}

/// What a synthesised bus is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SiteKind {
    /// The primary substation's MV busbar (external grid).
    Primary,
    /// An MV junction along the streets.
    MvJunction,
    /// An MV/LV substation's MV side.
    SubstationMv,
    /// An MV/LV substation's LV busbar.
    SubstationLv,
    /// An LV junction along the streets.
    LvJunction,
    /// A building's connection.
    Building,
}

/// The synthesised grid: the network, where each bus and branch lies, and which building each load is.
#[derive(Clone, Debug, Serialize)]
pub struct SynthesisedGrid {
    /// The network.
    pub network: Network,
    /// Position of each bus (local frame, m).
    pub bus_pos: Vec<Vec2>,
    /// What each bus is.
    pub bus_kind: Vec<SiteKind>,
    /// Course of each branch (local frame, m).
    pub branch_path: Vec<Vec<Vec2>>,
    /// Cable or transformer type of each branch.
    pub branch_type: Vec<String>,
    /// Per load injection: the building it supplies (index into `City::buildings`).
    pub load_building: Vec<(usize, usize)>,
    /// Per building: its LV district (substation number), or None when it has no demand.
    pub building_district: Vec<Option<usize>>,
    /// Per district: the LV busbar's bus index and the transformer's branch index.
    pub substations: Vec<(usize, usize)>,
}

/// Peak demand (MW) of a building by the parameters.
pub fn building_peak_mw(params: &SynthesisParams, floor_area_m2: f64, building_use: BuildingUse) -> f64 {
    let w = match building_use {
        BuildingUse::Residential => params.residential_w_per_m2,
        BuildingUse::Office | BuildingUse::Education | BuildingUse::Health | BuildingUse::Public => {
            params.commercial_w_per_m2
        }
        BuildingUse::Retail | BuildingUse::Hospitality => params.retail_w_per_m2,
        BuildingUse::Industrial | BuildingUse::Parking | BuildingUse::Other | BuildingUse::Unknown => {
            params.other_w_per_m2
        }
    };
    w * floor_area_m2 / 1e6
}

/// Undirected street graph: per node, (neighbour, length m, link index).
fn street_adjacency(city: &City) -> Vec<Vec<(usize, f64, usize)>> {
    let mut adj = vec![Vec::new(); city.roads.nodes().len()];
    for (k, l) in city.roads.links().iter().enumerate() {
        let (a, b) = (l.from.0 as usize, l.to.0 as usize);
        adj[a].push((b, l.length_m as f64, k));
        adj[b].push((a, l.length_m as f64, k));
    }
    adj
}

/// Dijkstra from `root`: (distance m, predecessor node, link used) per node.
fn shortest_tree(adj: &[Vec<(usize, f64, usize)>], root: usize) -> Vec<(f64, usize, usize)> {
    let mut best = vec![(f64::INFINITY, usize::MAX, usize::MAX); adj.len()];
    best[root].0 = 0.0;
    let mut heap = BinaryHeap::new();
    heap.push(Reverse((0u64, root)));
    while let Some(Reverse((d, u))) = heap.pop() {
        let d = f64::from_bits(d);
        if d > best[u].0 {
            continue;
        }
        for &(v, len, link) in &adj[u] {
            let nd = d + len;
            if nd < best[v].0 {
                best[v] = (nd, u, link);
                heap.push(Reverse((nd.to_bits(), v)));
            }
        }
    }
    best
}

/// Synthesises the grid of `city`. `None` when the city has no streets or no building with demand.
pub fn synthesise(city: &City, params: &SynthesisParams) -> Option<SynthesisedGrid> {
    let nodes = city.roads.nodes();
    if nodes.is_empty() {
        return None;
    }
    let peaks: Vec<f64> =
        city.buildings.iter().map(|b| building_peak_mw(params, b.floor_area_m2 as f64, b.building_use)).collect();
    let consumers: Vec<usize> = (0..peaks.len()).filter(|&i| peaks[i] > 0.0).collect();
    if consumers.is_empty() {
        return None;
    }
    let adj = street_adjacency(city);
    let nearest_node = |p: Vec2| -> usize {
        match city.road_index.nearest(p) {
            Some((link, _)) => {
                let l = city.roads.link(link);
                let (a, b) = (l.from.0 as usize, l.to.0 as usize);
                if nodes[a].pos.distance(p) <= nodes[b].pos.distance(p) {
                    a
                } else {
                    b
                }
            }
            None => 0,
        }
    };
    // Districts: weighted k-means, k grown until every district fits the largest transformer.
    let trafos = mv_lv_transformers();
    let largest = trafos.last().map_or(0.63, |t| t.sn_mva);
    let s_of = |p_mw: f64| p_mw / params.power_factor;
    let capacity = largest * params.transformer_utilisation;
    // A building larger than one transformer's planned load gets a substation of its own (with parallel
    // transformers); the others are grouped.
    let (big, small): (Vec<usize>, Vec<usize>) = consumers.iter().partition(|&&i| s_of(peaks[i]) > capacity);
    let pts: Vec<Vec2> = small.iter().chain(&big).map(|&i| city.buildings[i].centroid).collect();
    let weights: Vec<f64> = small.iter().chain(&big).map(|&i| peaks[i]).collect();
    let consumers: Vec<usize> = small.iter().chain(&big).copied().collect();
    let total: f64 = small.iter().map(|&i| s_of(peaks[i])).sum();
    let k0 = (total / capacity).ceil().max(1.0) as usize;
    let mut assignment = if small.is_empty() {
        Vec::new()
    } else {
        // k-means at the number of transformers the total needs, then any district still over capacity
        // is split in two (2-means on its own buildings) until all fit: dense blocks get more substations
        // without multiplying them everywhere.
        let n_small = small.len();
        let mut a = weighted_kmeans(&pts[..n_small], &weights[..n_small], k0.min(n_small));
        let mut k = a.iter().copied().max().map_or(0, |m| m + 1);
        let mut d = 0;
        while d < k {
            let members: Vec<usize> = (0..n_small).filter(|&j| a[j] == d).collect();
            let load: f64 = members.iter().map(|&j| s_of(weights[j])).sum();
            let w: f64 = members.iter().map(|&j| weights[j]).sum();
            let centre = members.iter().map(|&j| pts[j] * weights[j] as f32).fold(Vec2::ZERO, |a, b| a + b) / w as f32;
            let radius = members.iter().map(|&j| pts[j].distance(centre) as f64).fold(0.0, f64::max);
            if (load > capacity || radius > params.max_lv_radius_m) && members.len() > 1 {
                let sub_pts: Vec<Vec2> = members.iter().map(|&j| pts[j]).collect();
                let sub_w: Vec<f64> = members.iter().map(|&j| weights[j]).collect();
                let halves = weighted_kmeans(&sub_pts, &sub_w, 2);
                if halves.iter().all(|&h| h == halves[0]) {
                    d += 1; // the buildings cannot be told apart (one site): parallel transformers carry it
                    continue;
                }
                for (m, &j) in members.iter().enumerate() {
                    if halves[m] == 1 {
                        a[j] = k;
                    }
                }
                k += 1;
                continue; // re-check d with its remaining half
            }
            d += 1;
        }
        a
    };
    let first_big = assignment.iter().copied().max().map_or(0, |m| m + 1);
    assignment.extend((0..big.len()).map(|b| first_big + b));
    let k = first_big + big.len();
    let mut net =
        Network { name: format!("{} (synthesised)", city.name), base_mva: 1.0, f_hz: 50.0, ..Network::default() };
    let mut grid = SynthesisedGrid {
        network: Network::default(),
        bus_pos: Vec::new(),
        bus_kind: Vec::new(),
        branch_path: Vec::new(),
        branch_type: Vec::new(),
        load_building: Vec::new(),
        building_district: vec![None; city.buildings.len()],
        substations: Vec::new(),
    };
    let add_bus = |net: &mut Network, grid: &mut SynthesisedGrid, name: String, vn: f64, pos: Vec2, kind: SiteKind| {
        let id = net.buses.len() as i64;
        net.buses.push(Bus { id, name: Some(name), vn_kv: vn, in_service: true });
        grid.bus_pos.push(pos);
        grid.bus_kind.push(kind);
        net.buses.len() - 1
    };
    let link_path = |link: usize, from_node: usize| -> Vec<Vec2> {
        let l = &city.roads.links()[link];
        let mut g = l.geometry.clone();
        if l.from.0 as usize != from_node {
            g.reverse();
        }
        g
    };
    // Primary substation at the junction nearest the load centre.
    let centre = pts.iter().zip(&weights).map(|(p, w)| *p * *w as f32).fold(Vec2::ZERO, |a, b| a + b)
        / weights.iter().sum::<f64>() as f32;
    let primary_node = nearest_node(centre);
    let primary =
        add_bus(&mut net, &mut grid, "primary".into(), params.mv_kv, nodes[primary_node].pos, SiteKind::Primary);
    net.controls.push(VoltageControl {
        bus: primary,
        vm_pu: params.primary_vm_pu,
        va_deg: 0.0,
        slack: true,
        in_service: true,
    });
    net.injections.push(Injection {
        kind: InjectionKind::ExternalGrid,
        source_index: 0,
        bus: primary,
        p_mw: 0.0,
        q_mvar: 0.0,
        in_service: true,
    });
    let mv_tree = shortest_tree(&adj, primary_node);
    let mut mv_bus: HashMap<usize, usize> = HashMap::from([(primary_node, primary)]);
    let (lv, mv) = (lv_cable(), mv_cable());
    // An MV bus at `node`, with the MV cables back along the tree to a node that has one.
    let mut mv_bus_at = |net: &mut Network, grid: &mut SynthesisedGrid, node: usize| -> usize {
        let mut chain = Vec::new();
        let mut u = node;
        while !mv_bus.contains_key(&u) && mv_tree[u].1 != usize::MAX {
            chain.push(u);
            u = mv_tree[u].1;
        }
        if !mv_bus.contains_key(&u) {
            // Not reachable over the streets: a straight cable from the primary.
            chain.push(u);
            u = primary_node;
        }
        let mut upstream = mv_bus[&u];
        for &c in chain.iter().rev() {
            let b = add_bus(net, grid, format!("mv:{c}"), params.mv_kv, nodes[c].pos, SiteKind::MvJunction);
            // Along the street link from its tree predecessor (the bus just upstream), or straight.
            let (len_m, path) = if mv_tree[c].1 != usize::MAX {
                (mv_tree[c].0 - mv_tree[mv_tree[c].1].0, link_path(mv_tree[c].2, mv_tree[c].1))
            } else {
                (nodes[c].pos.distance(nodes[u].pos) as f64, vec![nodes[u].pos, nodes[c].pos])
            };
            net.branches.push(net.line_branch(upstream, b, (len_m / 1000.0).max(1e-3), &mv, 1.0, 1.0));
            grid.branch_path.push(path);
            grid.branch_type.push(mv.name.clone());
            mv_bus.insert(c, b);
            upstream = b;
            u = c;
        }
        mv_bus[&node]
    };
    for d in 0..k {
        let members: Vec<usize> = (0..consumers.len()).filter(|&j| assignment[j] == d).collect();
        if members.is_empty() {
            continue;
        }
        let w: f64 = members.iter().map(|&j| weights[j]).sum();
        let c = members.iter().map(|&j| pts[j] * weights[j] as f32).fold(Vec2::ZERO, |a, b| a + b) / w as f32;
        let node = nearest_node(c);
        let s = members.iter().map(|&j| s_of(weights[j])).sum::<f64>();
        let trafo =
            trafos.iter().find(|t| s <= t.sn_mva * params.transformer_utilisation).unwrap_or(&trafos[trafos.len() - 1]);
        let parallel = (s / capacity).ceil().max(1.0);
        let hv = mv_bus_at(&mut net, &mut grid, node);
        let sub_mv = add_bus(
            &mut net,
            &mut grid,
            format!("substation {d} MV"),
            params.mv_kv,
            nodes[node].pos,
            SiteKind::SubstationMv,
        );
        // The MV side of the substation joins the street MV bus by a short station cable (10 m).
        net.branches.push(net.line_branch(hv, sub_mv, 0.01, &mv, 1.0, 1.0));
        grid.branch_path.push(vec![nodes[node].pos, nodes[node].pos]);
        grid.branch_type.push(mv.name.clone());
        let sub_lv = add_bus(
            &mut net,
            &mut grid,
            format!("substation {d} LV"),
            params.lv_kv,
            nodes[node].pos,
            SiteKind::SubstationLv,
        );
        let t_index = net.branches.len();
        net.branches.push(net.transformer_branch(
            sub_mv,
            sub_lv,
            trafo,
            trafo.vn_hv_kv,
            trafo.vn_lv_kv,
            trafo.shift_degree,
            parallel,
            1.0,
        ));
        grid.branch_path.push(vec![nodes[node].pos]);
        grid.branch_type.push(trafo.name.clone());
        grid.substations.push((sub_lv, t_index));
        // LV feeders along the streets.
        let tree = shortest_tree(&adj, node);
        let mut lv_bus: HashMap<usize, usize> = HashMap::from([(node, sub_lv)]);
        for &j in &members {
            let bi = consumers[j];
            let b = &city.buildings[bi];
            let entry = nearest_node(b.centroid);
            // The chain of junctions from the building's entry back to one with a bus.
            let mut chain = Vec::new();
            let mut u = entry;
            while !lv_bus.contains_key(&u) && tree[u].1 != usize::MAX {
                chain.push(u);
                u = tree[u].1;
            }
            // Streets that wind (tunnels, one-way loops) can make the path far longer than the building's
            // distance: beyond 2.5 × the LV radius along the streets, a direct cable from the substation.
            let reachable = lv_bus.contains_key(&u) && tree[entry].0 <= 2.5 * params.max_lv_radius_m;
            let mut upstream = if reachable { lv_bus[&u] } else { sub_lv };
            if reachable {
                for &c in chain.iter().rev() {
                    let bus = add_bus(
                        &mut net,
                        &mut grid,
                        format!("lv{d}:{c}"),
                        params.lv_kv,
                        nodes[c].pos,
                        SiteKind::LvJunction,
                    );
                    let len_m = tree[c].0 - tree[tree[c].1].0;
                    net.branches.push(net.line_branch(upstream, bus, (len_m / 1000.0).max(1e-3), &lv, 1.0, 1.0));
                    grid.branch_path.push(link_path(tree[c].2, tree[c].1));
                    grid.branch_type.push(lv.name.clone());
                    lv_bus.insert(c, bus);
                    upstream = bus;
                }
                upstream = lv_bus[&entry];
            }
            // Service cable to the building (straight; at least 5 m).
            let from_pos = grid.bus_pos[upstream];
            let bus = add_bus(
                &mut net,
                &mut grid,
                format!("building {}", b.source_id),
                params.lv_kv,
                b.centroid,
                SiteKind::Building,
            );
            let len_m = (from_pos.distance(b.centroid) as f64).max(5.0);
            net.branches.push(net.line_branch(upstream, bus, len_m / 1000.0, &lv, 1.0, 1.0));
            grid.branch_path.push(vec![from_pos, b.centroid]);
            grid.branch_type.push(lv.name.clone());
            let p = peaks[bi];
            let q = p * (1.0 / (params.power_factor * params.power_factor) - 1.0).sqrt();
            grid.load_building.push((net.injections.len(), bi));
            net.injections.push(Injection {
                kind: InjectionKind::Load,
                source_index: bi,
                bus,
                p_mw: -p,
                q_mvar: -q,
                in_service: true,
            });
            grid.building_district[bi] = Some(grid.substations.len() - 1);
        }
    }
    for (k, b) in net.branches.iter_mut().enumerate() {
        b.source_index = k;
    }
    size_cables(&mut net, &grid.branch_type, params);
    grid.network = net;
    Some(grid)
}

/// Gives every cable as many parallel runs as its downstream peak needs at the planning utilisation
/// (several outgoing feeders of a substation, or a heavier section, in a real grid): the grid is radial,
/// so each branch's downstream load is the sum over the subtree it feeds.
fn size_cables(net: &mut Network, types: &[String], params: &SynthesisParams) {
    let nb = net.buses.len();
    let mut adj: Vec<Vec<(usize, usize)>> = vec![Vec::new(); nb];
    for (k, b) in net.branches.iter().enumerate() {
        adj[b.from].push((b.to, k));
        adj[b.to].push((b.from, k));
    }
    let mut s_bus = vec![0.0f64; nb];
    for inj in &net.injections {
        s_bus[inj.bus] += (inj.p_mw * inj.p_mw + inj.q_mvar * inj.q_mvar).sqrt();
    }
    let Some(root) = net.controls.iter().find(|c| c.slack).map(|c| c.bus) else { return };
    // Breadth-first order from the primary, then loads summed from the leaves up.
    let (mut order, mut parent_branch, mut seen) = (vec![root], vec![usize::MAX; nb], vec![false; nb]);
    seen[root] = true;
    let mut head = 0;
    while head < order.len() {
        let u = order[head];
        head += 1;
        for &(v, k) in &adj[u] {
            if !seen[v] {
                seen[v] = true;
                parent_branch[v] = k;
                order.push(v);
            }
        }
    }
    let mut downstream = s_bus;
    for &v in order.iter().rev() {
        let k = parent_branch[v];
        if k != usize::MAX {
            let b = &net.branches[k];
            let u = if b.from == v { b.to } else { b.from };
            downstream[u] += downstream[v];
        }
    }
    for &v in &order {
        let k = parent_branch[v];
        if k == usize::MAX || net.branches[k].kind != super::network::BranchKind::Line {
            continue;
        }
        let cable = if types[k] == mv_cable().name { mv_cable() } else { lv_cable() };
        let b = &net.branches[k];
        let kv = net.buses[b.from].vn_kv;
        let amps_ka = downstream[v] / (3f64.sqrt() * kv);
        let parallel = (amps_ka / (cable.max_i_ka * params.transformer_utilisation)).ceil().max(1.0);
        if parallel > 1.0 {
            // Same length: recover it from the single-run series impedance.
            let zb = kv * kv / net.base_mva;
            let z_ohm = (num_complex::Complex64::new(1.0, 0.0) / b.y_series).norm() * zb;
            let length_km = z_ohm / (cable.r_ohm_per_km.hypot(cable.x_ohm_per_km));
            let (from, to, index) = (b.from, b.to, b.source_index);
            net.branches[k] = super::network::Branch {
                source_index: index,
                ..net.line_branch(from, to, length_km, &cable, parallel, 1.0)
            };
        }
    }
}

/// Weighted k-means on points (Lloyd's algorithm, deterministic farthest-point seeding from the heaviest
/// point, 30 iterations): the cluster of each point.
fn weighted_kmeans(pts: &[Vec2], w: &[f64], k: usize) -> Vec<usize> {
    let heaviest = (0..pts.len()).max_by(|&a, &b| w[a].total_cmp(&w[b])).unwrap_or(0);
    let mut centres = vec![pts[heaviest]];
    while centres.len() < k {
        let far = (0..pts.len())
            .max_by(|&a, &b| {
                let da = centres.iter().map(|c| c.distance_squared(pts[a])).fold(f32::INFINITY, f32::min);
                let db = centres.iter().map(|c| c.distance_squared(pts[b])).fold(f32::INFINITY, f32::min);
                da.total_cmp(&db)
            })
            .unwrap_or(0);
        centres.push(pts[far]);
    }
    let mut assignment = vec![0; pts.len()];
    for _ in 0..30 {
        for (j, p) in pts.iter().enumerate() {
            assignment[j] = (0..k)
                .min_by(|&a, &b| centres[a].distance_squared(*p).total_cmp(&centres[b].distance_squared(*p)))
                .unwrap_or(0);
        }
        let mut sum = vec![(Vec2::ZERO, 0.0f64); k];
        for (j, p) in pts.iter().enumerate() {
            sum[assignment[j]].0 += *p * w[j] as f32;
            sum[assignment[j]].1 += w[j];
        }
        for (c, (s, ws)) in centres.iter_mut().zip(sum) {
            if ws > 0.0 {
                *c = s / ws as f32;
            }
        }
    }
    assignment
}

impl SynthesisedGrid {
    /// The grid as a GeoJSON FeatureCollection in longitude/latitude: buses as points (kind, kV),
    /// branches as lines (type, length), for a planner to inspect in QGIS or geojson.io.
    pub fn to_geojson(&self, city: &City) -> serde_json::Value {
        let ll = |p: Vec2| -> serde_json::Value {
            match city.frame.to_lon_lat(p.x as f64, p.y as f64) {
                Ok((lon, lat)) => serde_json::json!([lon, lat]),
                Err(_) => serde_json::Value::Null,
            }
        };
        let mut features = Vec::new();
        for (i, b) in self.network.buses.iter().enumerate() {
            features.push(serde_json::json!({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": ll(self.bus_pos[i])},
                "properties": {"bus": b.id, "name": b.name, "vn_kv": b.vn_kv, "kind": format!("{:?}", self.bus_kind[i])},
            }));
        }
        for (k, br) in self.network.branches.iter().enumerate() {
            let mut coords: Vec<serde_json::Value> = self.branch_path[k].iter().map(|&p| ll(p)).collect();
            if coords.len() == 1 {
                coords.push(coords[0].clone());
            }
            let length: f32 = self.branch_path[k].windows(2).map(|w| w[0].distance(w[1])).sum();
            features.push(serde_json::json!({
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": coords},
                "properties": {
                    "branch": k, "kind": format!("{:?}", br.kind), "type": self.branch_type[k],
                    "from_bus": self.network.buses[br.from].id, "to_bus": self.network.buses[br.to].id,
                    "length_m": length,
                },
            }));
        }
        serde_json::json!({"type": "FeatureCollection", "features": features})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::network::BranchKind;
    use crate::grid::{PowerFlow, PowerFlowOptions};

    fn andorra() -> City {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/andorra/baseline.toml");
        let scenario = crate::scenario::Scenario::load(&path).unwrap();
        crate::run::load_city(&scenario).unwrap()
    }

    #[test]
    fn andorra_gets_a_radial_grid_that_carries_its_peak() {
        let city = andorra();
        let g = synthesise(&city, &SynthesisParams::default()).unwrap();
        let net = &g.network;
        // Radial and connected: one fewer branch than buses, every bus reached from the primary.
        assert_eq!(net.branches.len() + 1, net.buses.len());
        // Every building with floor area has a load, in a district.
        let with_demand = city.buildings.iter().filter(|b| b.floor_area_m2 > 0.0).count();
        assert_eq!(g.load_building.len(), with_demand);
        assert!(g.building_district.iter().flatten().all(|&d| d < g.substations.len()));
        let sol = PowerFlow::new(net, PowerFlowOptions::default()).unwrap().solve(net).unwrap();
        let vmin = sol.vm_pu.iter().copied().fold(f64::INFINITY, f64::min);
        let trafo_max = g.substations.iter().map(|&(_, t)| sol.loading_percent[t]).fold(0.0, f64::max);
        let cable_max = net
            .branches
            .iter()
            .enumerate()
            .filter(|(_, b)| b.kind == BranchKind::Line)
            .map(|(k, _)| sol.loading_percent[k])
            .fold(0.0, f64::max);
        eprintln!(
            "Andorra synthesised: {} buses, {} substations, {:.2} MW peak, losses {:.3} MW, lowest voltage {vmin:.4} pu, \
             transformers up to {trafo_max:.1} %, cables up to {cable_max:.1} %",
            net.buses.len(),
            g.substations.len(),
            net.total_load_mw(),
            sol.losses_mw
        );
        assert!(vmin > 0.88, "voltages stay near the EN 50160 band at peak: {vmin}");
        assert!(trafo_max <= 100.0 && cable_max <= 100.0, "planned within ratings: {trafo_max} {cable_max}");
        // The GeoJSON has every bus and branch, in longitude/latitude around Andorra la Vella.
        let gj = g.to_geojson(&city);
        let features = gj["features"].as_array().unwrap();
        assert_eq!(features.len(), net.buses.len() + net.branches.len());
        let c = &features[0]["geometry"]["coordinates"];
        let (lon, lat) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        assert!((1.4..1.6).contains(&lon) && (42.4..42.6).contains(&lat), "{lon} {lat}");
    }
}
