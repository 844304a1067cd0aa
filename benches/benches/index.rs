//! Spatial index and routing throughput on Monaco: nearest-link queries, buildings within a distance, and
//! point-to-point routes: A* per query, and 10^5 queries on the contraction hierarchy split over the two
//! threads of the machine (the target: 10^5 routes in well under a second).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use machi::city::graph::NodeId;
use machi::city::routing::{ContractedRouter, Router, Weight};
use machi_benches::data;
use std::hint::black_box;

/// Deterministic pseudo-random sequence (SplitMix64) for query points.
fn sequence(n: usize) -> impl Iterator<Item = u64> {
    let mut z = 0x1234_5678u64;
    (0..n).map(move |_| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = z;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    })
}

fn index(c: &mut Criterion) {
    let city =
        machi::import::load_files("Monaco", &[&data("monaco/monaco.osm.pbf")], None, None).expect("Monaco imports");
    let (lo, hi) = city.bounds().expect("Monaco has data");
    let points: Vec<glam::Vec2> = sequence(2000)
        .map(|r| {
            let fx = (r & 0xffff) as f32 / 65535.0;
            let fy = ((r >> 16) & 0xffff) as f32 / 65535.0;
            lo + (hi - lo) * glam::Vec2::new(fx, fy)
        })
        .collect();
    let mut g = c.benchmark_group("index");
    g.throughput(Throughput::Elements(points.len() as u64));
    g.bench_function("nearest_road_link_x2000", |b| {
        b.iter(|| points.iter().map(|&p| black_box(city.nearest_road(p)).is_some() as u32).sum::<u32>())
    });
    g.bench_function("buildings_within_50m_x2000", |b| {
        b.iter(|| points.iter().map(|&p| city.buildings_within(p, 50.0).len()).sum::<usize>())
    });
    g.finish();

    let nodes = city.roads.nodes().len() as u64;
    let pairs: Vec<(NodeId, NodeId)> =
        sequence(1000).map(|r| (NodeId((r % nodes) as u32), NodeId(((r >> 32) % nodes) as u32))).collect();
    let mut g = c.benchmark_group("routing");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function("monaco_astar_travel_time_x1000", |b| {
        let mut router = Router::new(&city.roads);
        b.iter(|| pairs.iter().filter_map(|&(a, z)| router.route(a, z, Weight::TravelTime)).count())
    });
    let many: Vec<(NodeId, NodeId)> =
        sequence(100_000).map(|r| (NodeId((r % nodes) as u32), NodeId(((r >> 32) % nodes) as u32))).collect();
    let ch = ContractedRouter::new(&city.roads, Weight::TravelTime);
    g.throughput(Throughput::Elements(many.len() as u64));
    g.sample_size(10);
    g.bench_function("monaco_ch_travel_time_x100000_2_threads", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                let halves: Vec<_> = many
                    .chunks(many.len() / 2)
                    .map(|part| {
                        let ch = &ch;
                        s.spawn(move || {
                            let mut calc = ch.calculator();
                            part.iter().filter_map(|&(a, z)| ch.route(&mut calc, a, z)).count()
                        })
                    })
                    .collect();
                halves.into_iter().map(|h| h.join().expect("a routing thread")).sum::<usize>()
            })
        })
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("monaco_ch_prepare", |b| b.iter(|| ContractedRouter::new(&city.roads, Weight::TravelTime)));
    g.bench_function("monaco_dijkstra_tree", |b| {
        let mut router = Router::new(&city.roads);
        let mut out = Vec::new();
        b.iter(|| router.tree(pairs[0].0, Weight::TravelTime, &mut out))
    });
    g.finish();
}

criterion_group!(benches, index);
criterion_main!(benches);
