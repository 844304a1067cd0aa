//! `machi-viewer`: opens a replay and shows the city in 3D (Bevy). This is the minimal first version: the
//! buildings of the replay's static city as boxes over their footprints' extents, at their heights, on a
//! ground plane, with a fixed camera. The full viewer (terrain, water, agents, timeline) is its own issue.

use bevy::prelude::*;
use clap::Parser;
use machi::observe::replay::STREAM_CITY;
use machi::replay::ReplayReader;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "machi-viewer", about = "Watch a Machi replay in 3D.")]
struct Args {
    /// A replay written by `machi run` (replay.machi).
    replay: PathBuf,
}

/// A building as drawn: extent centre (x east, y north, m), size (m), height (m).
#[derive(Clone, Copy)]
struct BuildingBox {
    centre: Vec2,
    size: Vec2,
    height: f32,
}

#[derive(Resource)]
struct Scene {
    buildings: Vec<BuildingBox>,
    extent: f32,
}

fn load(path: &PathBuf) -> anyhow::Result<Scene> {
    let reader = ReplayReader::open(path)?;
    let payload = reader
        .static_payload(STREAM_CITY)?
        .ok_or_else(|| anyhow::anyhow!("{}: the replay has no city stream", path.display()))?;
    let city: serde_json::Value = serde_json::from_slice(&payload)?;
    let mut buildings = Vec::new();
    let mut extent: f32 = 100.0;
    for b in city["buildings"].as_array().into_iter().flatten() {
        let pts: Vec<Vec2> = b["footprint"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some(Vec2::new(p[0].as_f64()? as f32, p[1].as_f64()? as f32)))
            .collect();
        let Some(lo) = pts.iter().copied().reduce(Vec2::min) else { continue };
        let hi = pts.iter().copied().fold(lo, Vec2::max);
        extent = extent.max(hi.abs().max_element()).max(lo.abs().max_element());
        let height = b["height_m"].as_f64().unwrap_or(9.0) as f32;
        buildings.push(BuildingBox { centre: (lo + hi) / 2.0, size: hi - lo, height });
    }
    Ok(Scene { buildings, extent })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scene = load(&args.replay)?;
    App::new()
        .add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window { title: format!("Machi — {}", args.replay.display()), ..default() }),
            ..default()
        }))
        .insert_resource(scene)
        .add_systems(Startup, setup)
        .run();
    Ok(())
}

fn setup(
    mut commands: Commands,
    scene: Res<Scene>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let ground = materials.add(StandardMaterial { base_color: Color::srgb(0.35, 0.45, 0.3), ..default() });
    let walls = materials.add(StandardMaterial { base_color: Color::srgb(0.85, 0.82, 0.78), ..default() });
    let e = scene.extent;
    commands.spawn((Mesh3d(meshes.add(Plane3d::default().mesh().size(2.0 * e, 2.0 * e))), MeshMaterial3d(ground)));
    // Bevy is y-up: local east → x, north → −z.
    for b in &scene.buildings {
        commands.spawn((
            Mesh3d(meshes.add(Cuboid::new(b.size.x.max(1.0), b.height, b.size.y.max(1.0)))),
            MeshMaterial3d(walls.clone()),
            Transform::from_xyz(b.centre.x, b.height / 2.0, -b.centre.y),
        ));
    }
    commands.spawn((
        DirectionalLight { illuminance: 10_000.0, shadow_maps_enabled: false, ..default() },
        Transform::from_xyz(1.0, 2.0, 1.0).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    commands.spawn((Camera3d::default(), Transform::from_xyz(0.0, 0.8 * e, 1.2 * e).looking_at(Vec3::ZERO, Vec3::Y)));
}
