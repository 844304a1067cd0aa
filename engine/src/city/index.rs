//! Spatial indexes over the city (R*-trees from the `rstar` crate, Beckmann et al. 1990), built once when
//! the City is built: buildings (by footprint envelope), road and footpath link segments, and point assets
//! (bus stops, signals). The queries here are the ones domains need: nearest link to a point, links within a
//! distance, buildings within a distance or a polygon.

use super::graph::{Graph, LinkId};
use super::Building;
use crate::geo::shapes;
use glam::Vec2;
use rstar::primitives::{GeomWithData, Line, Rectangle};
use rstar::{PointDistance, RTree, AABB};

type Segment = GeomWithData<Line<[f32; 2]>, u32>;
type Envelope = GeomWithData<Rectangle<[f32; 2]>, u32>;
type PointItem = GeomWithData<[f32; 2], (PointKind, u32)>;

/// Kinds of point assets in the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PointKind {
    /// Index into `City::bus_stops`.
    BusStop,
    /// Node id of a signalised road junction.
    Signal,
}

/// Index over one graph's link segments.
pub struct LinkIndex {
    tree: RTree<Segment>,
}

fn p(v: Vec2) -> [f32; 2] {
    [v.x, v.y]
}

impl LinkIndex {
    /// Indexes every segment of every link's geometry.
    pub fn new(graph: &Graph) -> LinkIndex {
        let segments = graph
            .links()
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.geometry.windows(2).map(move |w| Segment::new(Line::new(p(w[0]), p(w[1])), i as u32)))
            .collect();
        LinkIndex { tree: RTree::bulk_load(segments) }
    }

    /// The link nearest to `point` and its distance (m); `None` for an empty graph. Ties go to the lower id.
    pub fn nearest(&self, point: Vec2) -> Option<(LinkId, f32)> {
        let q = p(point);
        let mut best: Option<(u32, f32)> = None;
        for (seg, d2) in self.tree.nearest_neighbor_iter_with_distance_2(q) {
            match best {
                Some((_, bd2)) if d2 > bd2 => break,
                Some((id, bd2)) if d2 == bd2 && seg.data >= id => {}
                _ => best = Some((seg.data, d2)),
            }
        }
        best.map(|(id, d2)| (LinkId(id), d2.sqrt()))
    }

    /// Links with any segment within `radius_m` of `point`, sorted by id, without duplicates.
    pub fn within(&self, point: Vec2, radius_m: f32) -> Vec<LinkId> {
        let mut ids: Vec<u32> =
            self.tree.locate_within_distance(p(point), radius_m * radius_m).map(|s| s.data).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(LinkId).collect()
    }
}

/// Index over building footprints.
pub struct BuildingIndex {
    tree: RTree<Envelope>,
}

impl BuildingIndex {
    /// Indexes each building's footprint envelope.
    pub fn new(buildings: &[Building]) -> BuildingIndex {
        let items = buildings
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let (lo, hi) = shapes::bounds(b.footprint.iter().copied())?;
                Some(Envelope::new(Rectangle::from_corners(p(lo), p(hi)), i as u32))
            })
            .collect();
        BuildingIndex { tree: RTree::bulk_load(items) }
    }

    /// Buildings whose footprint comes within `radius_m` of `point` (inside counts as distance 0), by id.
    pub fn within_distance(&self, buildings: &[Building], point: Vec2, radius_m: f32) -> Vec<u32> {
        let r2 = radius_m * radius_m;
        let mut ids: Vec<u32> = self
            .tree
            .locate_within_distance(p(point), r2)
            .map(|e| e.data)
            .filter(|&i| {
                let fp = &buildings[i as usize].footprint;
                shapes::contains(fp, point) || {
                    let mut ring = fp.clone();
                    ring.push(fp[0]);
                    shapes::distance2_to_polyline(&ring, point) <= r2
                }
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Buildings whose centroid lies inside `polygon` (a ring in the local frame), by id.
    pub fn within_polygon(&self, buildings: &[Building], polygon: &[Vec2]) -> Vec<u32> {
        let Some((lo, hi)) = shapes::bounds(polygon.iter().copied()) else { return Vec::new() };
        let mut ids: Vec<u32> = self
            .tree
            .locate_in_envelope_intersecting(AABB::from_corners(p(lo), p(hi)))
            .map(|e| e.data)
            .filter(|&i| shapes::contains(polygon, buildings[i as usize].centroid))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// The building whose footprint contains `point`, if any (lowest id when footprints overlap).
    pub fn at(&self, buildings: &[Building], point: Vec2) -> Option<u32> {
        self.tree
            .locate_all_at_point(p(point))
            .map(|e| e.data)
            .filter(|&i| shapes::contains(&buildings[i as usize].footprint, point))
            .min()
    }
}

/// Index over point assets.
pub struct PointIndex {
    tree: RTree<PointItem>,
}

impl PointIndex {
    /// Indexes the given points.
    pub fn new(points: impl IntoIterator<Item = (PointKind, u32, Vec2)>) -> PointIndex {
        PointIndex {
            tree: RTree::bulk_load(points.into_iter().map(|(k, i, v)| PointItem::new(p(v), (k, i))).collect()),
        }
    }

    /// Nearest asset of `kind` to `point`, with its distance (m).
    pub fn nearest(&self, kind: PointKind, point: Vec2) -> Option<(u32, f32)> {
        self.tree
            .nearest_neighbor_iter(p(point))
            .find(|it| it.data.0 == kind)
            .map(|it| (it.data.1, it.geom().distance_2(&p(point)).sqrt()))
    }

    /// Assets of `kind` within `radius_m` of `point`, sorted by index.
    pub fn within(&self, kind: PointKind, point: Vec2, radius_m: f32) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .tree
            .locate_within_distance(p(point), radius_m * radius_m)
            .filter(|it| it.data.0 == kind)
            .map(|it| it.data.1)
            .collect();
        ids.sort_unstable();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::super::graph::tests::grid3;
    use super::*;

    #[test]
    fn nearest_and_within_on_the_grid() {
        let g = grid3();
        let idx = LinkIndex::new(&g);
        let (link, d) = idx.nearest(Vec2::new(50.0, 10.0)).unwrap();
        let l = g.link(link);
        assert!((d - 10.0).abs() < 1e-4);
        assert_eq!(l.geometry[0].y, 0.0);
        assert_eq!(l.geometry[1].y, 0.0);
        // Both directions of the bottom-left edge, plus the left column's 0–3 edge within 15 m of (5, 5).
        let near = idx.within(Vec2::new(5.0, 5.0), 15.0);
        assert_eq!(near.len(), 4, "{near:?}");
    }

    #[test]
    fn points_by_kind() {
        let idx = PointIndex::new([
            (PointKind::BusStop, 0, Vec2::new(0.0, 0.0)),
            (PointKind::Signal, 7, Vec2::new(1.0, 0.0)),
            (PointKind::BusStop, 1, Vec2::new(10.0, 0.0)),
        ]);
        assert_eq!(idx.nearest(PointKind::Signal, Vec2::new(9.0, 0.0)), Some((7, 8.0)));
        assert_eq!(idx.nearest(PointKind::BusStop, Vec2::new(9.0, 0.0)), Some((1, 1.0)));
        assert_eq!(idx.within(PointKind::BusStop, Vec2::ZERO, 20.0), vec![0, 1]);
    }
}

#[cfg(test)]
mod building_tests {
    use super::super::{Building, HeightSource};
    use super::*;
    use crate::import::tags::BuildingUse;

    fn square(x: f32, y: f32, side: f32) -> Building {
        let footprint =
            vec![Vec2::new(x, y), Vec2::new(x + side, y), Vec2::new(x + side, y + side), Vec2::new(x, y + side)];
        Building {
            source_id: format!("{x},{y}"),
            centroid: shapes::centroid(&footprint),
            footprint_m2: side * side,
            footprint,
            height_m: 9.0,
            height_source: HeightSource::Default,
            levels: 3.0,
            floor_area_m2: 3.0 * side * side,
            building_use: BuildingUse::Residential,
        }
    }

    #[test]
    fn buildings_by_distance_polygon_and_point() {
        let buildings: Vec<Building> = (0..10).map(|i| square(i as f32 * 20.0, 0.0, 10.0)).collect();
        let idx = BuildingIndex::new(&buildings);
        // From (15, 5): building 0 spans x 0–10 (5 m away), building 1 spans 20–30 (5 m away).
        assert_eq!(idx.within_distance(&buildings, Vec2::new(15.0, 5.0), 5.0), vec![0, 1]);
        assert_eq!(idx.within_distance(&buildings, Vec2::new(15.0, 5.0), 4.9), Vec::<u32>::new());
        assert_eq!(idx.within_distance(&buildings, Vec2::new(45.0, 5.0), 0.0), vec![2], "inside counts as 0 m");
        let poly = [Vec2::new(-1.0, -1.0), Vec2::new(50.0, -1.0), Vec2::new(50.0, 20.0), Vec2::new(-1.0, 20.0)];
        assert_eq!(idx.within_polygon(&buildings, &poly), vec![0, 1, 2], "centroids at x = 5, 25, 45");
        assert_eq!(idx.at(&buildings, Vec2::new(61.0, 9.0)), Some(3));
        assert_eq!(idx.at(&buildings, Vec2::new(71.0, 9.0)), None);
    }
}
