//! The Bevy side of the viewer: spawns the static scene (terrain, buildings, roads, footpaths, rivers, grid
//! lines and substations) once, then shows the replay at the playback time every frame: agents as instanced
//! boxes coloured by state (one shared mesh per agent class and one material per state, so Bevy batches
//! them), the flood water surface, grid loading and outages, and the sun for the time of day.
//!
//! Keys (interactive window): Space play/pause, Up/Down faster/slower, Left/Right back/forward a minute
//! (with Shift an hour), Home/End start/end, 1–7 toggle the layers (terrain, buildings, streets, water,
//! agents, grid, footpaths).

use crate::camera::{CameraPreset, OrbitCamera};
use crate::data::{AgentLook, Closures, DrawnAgent, ReplayData, Ribbon};
use crate::meshes::{self, MeshData};
use crate::palette;
use crate::sun;
use crate::timeline::Playback;
use bevy::asset::RenderAssetUsages;
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use machi::replay::RasterFrame;
use std::collections::HashMap;

/// Vertical field of view of the camera, radians.
pub const FOV_Y_RAD: f32 = std::f32::consts::FRAC_PI_4;
/// Illuminance of the sun high in the sky, lux (bright enough for Bevy's default exposure).
pub const SUN_LUX: f32 = 9_000.0;
/// Ambient light, cd/m² (keeps shaded walls and the night readable).
pub const AMBIENT_BRIGHTNESS: f32 = 700.0;
/// Size of a car as drawn at life size (length, width, height), m.
pub const CAR_SIZE_M: Vec3 = Vec3::new(4.5, 1.5, 1.8);
/// Size of a bus as drawn at life size (length, height, width), m: a 12 m standard bus, as the vehicle
/// models' bus class.
pub const BUS_SIZE_M: Vec3 = Vec3::new(12.0, 3.0, 2.5);
/// Size of a person as drawn at life size, m.
pub const PERSON_SIZE_M: Vec3 = Vec3::new(0.6, 1.8, 0.6);
/// Size of a delivery robot as drawn at life size, m.
pub const ROBOT_SIZE_M: Vec3 = Vec3::new(0.9, 0.8, 0.6);
/// Size of a substation as drawn, m.
pub const SUBSTATION_SIZE_M: Vec3 = Vec3::new(8.0, 5.0, 8.0);
/// How much wider than the street a closed street is drawn.
pub const CLOSED_WIDTH_FACTOR: f32 = 1.4;
/// How far a closure is drawn above the street, m.
pub const CLOSED_LIFT_M: f32 = 0.3;
/// Height of power lines over the ground, m.
pub const POWER_LINE_HEIGHT_M: f32 = 8.0;

/// A layer the user can show or hide.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// The ground.
    Terrain,
    /// Buildings.
    Buildings,
    /// Roads and rivers.
    Streets,
    /// Flood water.
    Water,
    /// Vehicles, persons and robots.
    Agents,
    /// Power lines and substations.
    Grid,
    /// Footpaths.
    Footpaths,
}

impl Layer {
    /// Layers in the order of the number keys 1–7.
    pub const ALL: [Layer; 7] =
        [Layer::Terrain, Layer::Buildings, Layer::Streets, Layer::Water, Layer::Agents, Layer::Grid, Layer::Footpaths];
}

/// What the viewer shows: the replay, the playback clock and the visible layers.
#[derive(Resource)]
pub struct Viewer {
    /// The replay shown.
    pub data: ReplayData,
    /// The other replay of an A/B comparison (Tab swaps it with `data`), if any.
    pub other: Option<ReplayData>,
    /// Whether `data` is the comparison's second replay (B).
    pub showing_b: bool,
    /// Agents drawn at the current time (for picking).
    pub shown_agents: Vec<DrawnAgent>,
    /// Flood depth drawn at the current time (m), if any.
    pub shown_depth: Option<RasterFrame>,
    /// The playback clock.
    pub playback: Playback,
    /// Hidden layers.
    pub hidden: Vec<Layer>,
    /// Day of the year the sun is placed for.
    pub day_of_year: u32,
    /// The camera framing the scene opens with.
    pub preset: CameraPreset,
    /// The time (ms) and marker scale last drawn, to redraw only on change.
    drawn: Option<(u64, f32)>,
    /// Start of the power flow (ms) and the marker scale of the grid state last drawn.
    grid_drawn: Option<(u64, f32)>,
    /// Time of the closures last drawn (ms).
    closures_drawn: Option<u64>,
}

impl Viewer {
    /// A viewer of `data`, paused at its start; with `other`, an A/B comparison of two runs of one city (the
    /// error says how they differ otherwise).
    pub fn new(data: ReplayData, other: Option<ReplayData>, preset: CameraPreset) -> anyhow::Result<Viewer> {
        if let Some(b) = &other {
            let (sa, sb) = (&data.scene, &b.scene);
            if sa.city != sb.city || sa.buildings.len() != sb.buildings.len() || sa.roads.len() != sb.roads.len() {
                anyhow::bail!(
                    "{} and {} are not runs of the same city ({}, {} buildings, {} roads vs {}, {} buildings, {} roads)",
                    data.reader().path().display(),
                    b.reader().path().display(),
                    sa.city,
                    sa.buildings.len(),
                    sa.roads.len(),
                    sb.city,
                    sb.buildings.len(),
                    sb.roads.len()
                );
            }
        }
        let end = other.as_ref().map_or(data.scene.end_ms, |b| b.scene.end_ms.max(data.scene.end_ms));
        Ok(Viewer {
            data,
            other,
            showing_b: false,
            shown_agents: Vec::new(),
            shown_depth: None,
            playback: Playback::new(end),
            hidden: Vec::new(),
            day_of_year: sun::DEFAULT_DAY_OF_YEAR,
            preset,
            drawn: None,
            grid_drawn: None,
            closures_drawn: None,
        })
    }

    /// Flood depth at local point `p` at the time drawn (m), if the replay has a flood and `p` is on its grid.
    pub fn water_at(&self, p: Vec2) -> Option<f32> {
        let r = self.shown_depth.as_ref()?;
        let (col, row) = ((p.x - r.origin_x_m) / r.cell_m, (p.y - r.origin_y_m) / r.cell_m);
        if col < 0.0 || row < 0.0 || col >= r.width as f32 || row >= r.height as f32 {
            return None;
        }
        r.values.get(row as usize * r.width as usize + col as usize).copied().filter(|d| d.is_finite())
    }

    /// Shows the other replay of an A/B comparison (nothing without one), at the same time and camera.
    pub fn swap(&mut self) {
        if let Some(other) = self.other.as_mut() {
            std::mem::swap(&mut self.data, other);
            self.showing_b = !self.showing_b;
            self.drawn = None;
            self.grid_drawn = None;
            self.closures_drawn = None;
        }
    }
}

/// Handles of the shared agent meshes and materials.
#[derive(Resource)]
struct AgentAssets {
    car: Handle<Mesh>,
    bus: Handle<Mesh>,
    person: Handle<Mesh>,
    robot: Handle<Mesh>,
    looks: HashMap<AgentLook, Handle<StandardMaterial>>,
}

/// The water, grid-line and substation meshes, replaced as time moves.
#[derive(Resource)]
struct DynamicMeshes {
    water: Handle<Mesh>,
    grid_lines: Handle<Mesh>,
    closed: Handle<Mesh>,
    sites: Vec<Entity>,
    site_looks: [Handle<StandardMaterial>; 3],
}

/// An agent slot of the pool (reused frame to frame).
#[derive(Component)]
struct AgentSlot;

/// The sun.
#[derive(Component)]
struct Sun;

/// The agent slots, to place and colour.
type AgentSlots<'w, 's> = Query<
    'w,
    's,
    (
        &'static mut Transform,
        &'static mut Visibility,
        &'static mut Mesh3d,
        &'static mut MeshMaterial3d<StandardMaterial>,
    ),
    With<AgentSlot>,
>;

/// The sun's light, to turn with the time of day.
type SunLight<'w, 's> =
    Query<'w, 's, (&'static mut Transform, &'static mut DirectionalLight), (With<Sun>, Without<AgentSlot>)>;

/// Pool of agent entities.
#[derive(Resource, Default)]
struct AgentPool(Vec<Entity>);

/// The systems that draw the replay at the playback time (anything that moves the clock runs before them).
#[derive(SystemSet, Debug, Clone, PartialEq, Eq, Hash)]
pub struct Draw;

/// Adds the scene: its start-up and per-frame systems.
pub struct ScenePlugin;

impl Plugin for ScenePlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(ClearColor(Color::srgb(palette::SKY[0], palette::SKY[1], palette::SKY[2])))
            .insert_resource(GlobalAmbientLight { color: Color::WHITE, brightness: AMBIENT_BRIGHTNESS, ..default() })
            .init_resource::<AgentPool>()
            .add_systems(Startup, spawn_scene)
            .add_systems(Update, (apply_layers, show_time).chain().in_set(Draw));
    }
}

/// A Bevy mesh from mesh arrays.
pub fn to_mesh(data: MeshData) -> Mesh {
    Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::default())
        .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, data.positions)
        .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, data.normals)
        .with_inserted_attribute(Mesh::ATTRIBUTE_COLOR, data.colors)
        .with_inserted_indices(Indices::U32(data.indices))
}

/// Puts `data` under `handle`, or removes the mesh when `data` has no triangles (the renderer does not take
/// empty meshes; an entity whose mesh is missing draws nothing).
fn set_mesh(meshes: &mut Assets<Mesh>, handle: &Handle<Mesh>, data: MeshData) {
    if data.indices.is_empty() {
        meshes.remove(handle);
    } else if let Err(e) = meshes.insert(handle, to_mesh(data)) {
        error!("cannot replace a mesh: {e}");
    }
}

fn color(c: palette::Rgba) -> Color {
    Color::srgba(c[0], c[1], c[2], c[3])
}

/// Spawns the static scene, the camera (at the viewer's preset) and the sun.
pub fn spawn_scene(
    mut commands: Commands,
    viewer: Res<Viewer>,
    mut meshes_: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
) {
    let scene = &viewer.data.scene;
    // Vertex colours carry the colour; the material only sets how the surface takes light.
    let matte = materials.add(StandardMaterial { perceptual_roughness: 0.95, reflectance: 0.1, ..default() });
    let mut spawn = |mesh: MeshData, material: &Handle<StandardMaterial>, layer: Layer| {
        if !mesh.indices.is_empty() {
            commands.spawn((Mesh3d(meshes_.add(to_mesh(mesh))), MeshMaterial3d(material.clone()), layer));
        }
    };
    if let Some(t) = &scene.terrain {
        spawn(meshes::terrain(t, scene.datum_m()), &matte, Layer::Terrain);
    }
    spawn(meshes::buildings(scene), &matte, Layer::Buildings);
    spawn(meshes::ribbons(scene, &scene.roads, 1.0, |_| palette::ROAD), &matte, Layer::Streets);
    spawn(meshes::ribbons(scene, &scene.rivers, 1.0, |_| palette::RIVER), &matte, Layer::Streets);
    spawn(meshes::ribbons(scene, &scene.footpaths, 1.0, |_| palette::FOOTPATH), &matte, Layer::Footpaths);

    let water_material = materials.add(StandardMaterial {
        alpha_mode: AlphaMode::Blend,
        perceptual_roughness: 0.2,
        reflectance: 0.3,
        double_sided: true,
        cull_mode: None,
        ..default()
    });
    // Water and grid lines get their meshes when there is something to draw.
    let water = meshes_.reserve_handle();
    commands.spawn((Mesh3d(water.clone()), MeshMaterial3d(water_material), Layer::Water));
    let unlit = |materials: &mut Assets<StandardMaterial>, c: palette::Rgba| {
        materials.add(StandardMaterial { base_color: color(c), unlit: true, ..default() })
    };
    let grid_lines = meshes_.reserve_handle();
    let closed = meshes_.reserve_handle();
    commands.spawn((Mesh3d(closed.clone()), MeshMaterial3d(matte.clone()), Layer::Streets));
    let line_material = materials.add(StandardMaterial { unlit: true, ..default() });
    commands.spawn((Mesh3d(grid_lines.clone()), MeshMaterial3d(line_material), Layer::Grid));
    let site_looks = [0u8, 1, 2].map(|s| unlit(&mut materials, palette::site(s)));
    let substation = meshes_.add(Cuboid::from_size(SUBSTATION_SIZE_M));
    let datum = scene.datum_m();
    let sites = scene
        .grid
        .iter()
        .flat_map(|g| g.sites.iter())
        .map(|&p| {
            let z = scene.ground(p) - datum + 0.5 * SUBSTATION_SIZE_M.y;
            commands
                .spawn((
                    Mesh3d(substation.clone()),
                    MeshMaterial3d(site_looks[0].clone()),
                    Transform::from_translation(Vec3::from(meshes::world(p, z))),
                    Layer::Grid,
                ))
                .id()
        })
        .collect();
    commands.insert_resource(DynamicMeshes { water, grid_lines, closed, sites, site_looks });

    let looks = AgentLook::ALL.iter().map(|&l| (l, unlit(&mut materials, palette::agent(l)))).collect();
    commands.insert_resource(AgentAssets {
        car: meshes_.add(Cuboid::from_size(CAR_SIZE_M)),
        bus: meshes_.add(Cuboid::from_size(BUS_SIZE_M)),
        person: meshes_.add(Cuboid::from_size(PERSON_SIZE_M)),
        robot: meshes_.add(Cuboid::from_size(ROBOT_SIZE_M)),
        looks,
    });

    let centre = (scene.extent.0 + scene.extent.1) / 2.0;
    let cam = viewer.preset.pose(scene.extent, scene.ground(centre) - datum, FOV_Y_RAD);
    commands.spawn((
        Camera3d::default(),
        Projection::Perspective(PerspectiveProjection { fov: FOV_Y_RAD, far: 200_000.0, ..default() }),
        cam.transform(),
        cam,
    ));
    commands.spawn((
        DirectionalLight { illuminance: SUN_LUX, shadow_maps_enabled: false, ..default() },
        Transform::default(),
        Sun,
    ));
}

fn apply_layers(
    viewer: Res<Viewer>,
    mut items: Query<(&Layer, &mut Visibility)>,
    mut slots: Query<&mut Visibility, (With<AgentSlot>, Without<Layer>)>,
) {
    if !viewer.is_changed() {
        return;
    }
    for (layer, mut vis) in &mut items {
        let want = if viewer.hidden.contains(layer) { Visibility::Hidden } else { Visibility::Inherited };
        vis.set_if_neq(want);
    }
    if viewer.hidden.contains(&Layer::Agents) {
        for mut vis in &mut slots {
            vis.set_if_neq(Visibility::Hidden);
        }
    }
}

/// Draws the replay at the playback time: agents, water, closed streets, grid and sun. Errors reading the replay (a damaged
/// chunk) are logged once per time and leave the previous picture.
#[allow(clippy::too_many_arguments)]
fn show_time(
    mut commands: Commands,
    mut viewer: ResMut<Viewer>,
    assets: Res<AgentAssets>,
    dynamic: Res<DynamicMeshes>,
    mut pool: ResMut<AgentPool>,
    mut meshes_: ResMut<Assets<Mesh>>,
    cameras: Query<&OrbitCamera>,
    mut slots: AgentSlots,
    mut sites: Query<&mut MeshMaterial3d<StandardMaterial>, Without<AgentSlot>>,
    mut sun_light: SunLight,
) {
    let t = viewer.playback.t_ms();
    let scale = cameras.iter().next().map(OrbitCamera::marker_scale).unwrap_or(1.0);
    if viewer.drawn == Some((t, scale)) {
        return;
    }
    viewer.drawn = Some((t, scale));
    let scene = &viewer.data.scene;
    let datum = scene.datum_m();

    // The sun.
    let hour = (scene.start_of_day_ms + t) as f64 / 3_600_000.0 % 24.0;
    let dir = sun::direction(scene.origin_lon_lat.1, viewer.day_of_year, hour);
    for (mut tf, mut light) in &mut sun_light {
        *tf = Transform::from_translation(dir).looking_at(Vec3::ZERO, Vec3::Y);
        light.illuminance = SUN_LUX * dir.y.max(0.0).sqrt();
    }

    // Agents.
    let mut redraw = false;
    let agents = match viewer.data.agents_at(t) {
        Ok(a) => a,
        Err(e) => {
            error!("{e:#}");
            Vec::new()
        }
    };
    let show_agents = !viewer.hidden.contains(&Layer::Agents);
    while pool.0.len() < agents.len() {
        let e = commands
            .spawn((
                Mesh3d(assets.car.clone()),
                MeshMaterial3d(assets.looks[&AgentLook::CarMoving].clone()),
                Transform::default(),
                Visibility::Hidden,
                AgentSlot,
            ))
            .id();
        pool.0.push(e);
    }
    for (k, &e) in pool.0.iter().enumerate() {
        let Ok((mut tf, mut vis, mut mesh, mut material)) = slots.get_mut(e) else {
            // Spawned this frame: it is placed next frame (the time is redrawn then).
            redraw = true;
            continue;
        };
        let Some(a) = agents.get(k) else {
            vis.set_if_neq(Visibility::Hidden);
            continue;
        };
        let (handle, size) = if a.look.is_car() {
            (&assets.car, CAR_SIZE_M)
        } else if a.look.is_bus() {
            (&assets.bus, BUS_SIZE_M)
        } else if a.look.is_pedestrian() {
            (&assets.person, PERSON_SIZE_M)
        } else {
            (&assets.robot, ROBOT_SIZE_M)
        };
        if mesh.0 != *handle {
            mesh.0 = handle.clone();
        }
        let look = &assets.looks[&a.look];
        if material.0 != *look {
            material.0 = look.clone();
        }
        let z = scene.ground(a.pos) - datum + 0.5 * size.y * scale;
        *tf = Transform::from_translation(Vec3::from(meshes::world(a.pos, z)))
            .with_rotation(Quat::from_rotation_y(a.heading.y.atan2(a.heading.x)))
            .with_scale(Vec3::splat(scale));
        vis.set_if_neq(if show_agents { Visibility::Inherited } else { Visibility::Hidden });
    }

    if redraw {
        viewer.drawn = None;
    }
    viewer.shown_agents = agents;

    // Water.
    match viewer.data.flood_at(t) {
        Ok(depth) => {
            let scene = &viewer.data.scene;
            let mesh = depth.as_ref().map(|d| meshes::water(scene, d)).unwrap_or_default();
            set_mesh(&mut meshes_, &dynamic.water, mesh);
            viewer.shown_depth = depth;
        }
        Err(e) => error!("{e:#}"),
    }

    // Closed roads and footpaths, drawn wider over the streets.
    match viewer.data.closures_at(t) {
        Ok(Some(c)) if viewer.closures_drawn == Some(c.since_ms) => {}
        Ok(closures) => {
            let Closures { since_ms: t0, roads, footpaths } = closures.unwrap_or_default();
            let scene = &viewer.data.scene;
            let pick = |all: &[Ribbon], ids: &[u32]| -> Vec<Ribbon> {
                ids.iter().filter_map(|&k| all.get(k as usize)).cloned().collect()
            };
            let mut closed = pick(&scene.roads, &roads);
            closed.extend(pick(&scene.footpaths, &footpaths));
            let mut mesh = meshes::ribbons(scene, &closed, CLOSED_WIDTH_FACTOR, |_| palette::CLOSED);
            for p in &mut mesh.positions {
                p[1] += CLOSED_LIFT_M;
            }
            set_mesh(&mut meshes_, &dynamic.closed, mesh);
            viewer.closures_drawn = Some(t0);
        }
        Err(e) => error!("{e:#}"),
    }

    // Grid: lines coloured by loading, substations by state (redrawn when a new power flow starts).
    if let Some(layout) = viewer.data.scene.grid.clone() {
        match viewer.data.grid_at(t) {
            Ok(Some((t0, _))) if viewer.grid_drawn == Some((t0, scale)) => {}
            Ok(Some((t0, frame))) => {
                let ribbons: Vec<Ribbon> = layout
                    .branches
                    .iter()
                    .map(|b| Ribbon { points: b.clone(), width_m: crate::data::POWER_LINE_WIDTH_M })
                    .collect();
                let loading = frame.loading_percent.clone();
                // Lines widen more slowly than agents with distance: they are many and long.
                let mut mesh = meshes::ribbons(&viewer.data.scene, &ribbons, scale.sqrt(), |k| {
                    palette::line_loading(loading.get(k).copied().unwrap_or(f32::NAN))
                });
                for p in &mut mesh.positions {
                    p[1] += POWER_LINE_HEIGHT_M;
                }
                set_mesh(&mut meshes_, &dynamic.grid_lines, mesh);
                for (k, &e) in dynamic.sites.iter().enumerate() {
                    let state = frame.sites.get(k).copied().unwrap_or(0).min(2) as usize;
                    if let Ok(mut m) = sites.get_mut(e) {
                        if m.0 != dynamic.site_looks[state] {
                            m.0 = dynamic.site_looks[state].clone();
                        }
                    }
                }
                viewer.grid_drawn = Some((t0, scale));
            }
            Ok(None) => {}
            Err(e) => error!("{e:#}"),
        }
    }
}

/// Keyboard controls of the interactive window.
pub fn keyboard(keys: Res<ButtonInput<KeyCode>>, time: Res<Time>, mut viewer: ResMut<Viewer>) {
    if keys.just_pressed(KeyCode::Tab) {
        viewer.swap();
    }
    let p = &mut viewer.playback;
    if keys.just_pressed(KeyCode::Space) {
        p.toggle();
    }
    if keys.just_pressed(KeyCode::ArrowUp) {
        p.change_speed(true);
    }
    if keys.just_pressed(KeyCode::ArrowDown) {
        p.change_speed(false);
    }
    let jump = if keys.pressed(KeyCode::ShiftLeft) || keys.pressed(KeyCode::ShiftRight) { 3600.0 } else { 60.0 };
    if keys.just_pressed(KeyCode::ArrowLeft) {
        p.step(-jump);
    }
    if keys.just_pressed(KeyCode::ArrowRight) {
        p.step(jump);
    }
    if keys.just_pressed(KeyCode::Home) {
        p.seek(0);
    }
    if keys.just_pressed(KeyCode::End) {
        let end = p.end_ms();
        p.seek(end);
    }
    p.advance(time.delta_secs_f64());
    let digits = [
        KeyCode::Digit1,
        KeyCode::Digit2,
        KeyCode::Digit3,
        KeyCode::Digit4,
        KeyCode::Digit5,
        KeyCode::Digit6,
        KeyCode::Digit7,
    ];
    for (key, layer) in digits.into_iter().zip(Layer::ALL) {
        if keys.just_pressed(key) {
            match viewer.hidden.iter().position(|&l| l == layer) {
                Some(i) => {
                    viewer.hidden.remove(i);
                }
                None => viewer.hidden.push(layer),
            }
        }
    }
}

/// Shows the time, speed and play state in the window title.
pub fn title(viewer: Res<Viewer>, mut windows: Query<&mut Window>) {
    let p = &viewer.playback;
    let text = format!(
        "Machi — {} — {} — {} ×{} {}",
        viewer.data.scene.city,
        viewer.data.scene.scenario,
        p.clock(viewer.data.scene.start_of_day_ms),
        p.speed(),
        if p.playing() { "▶" } else { "⏸" }
    );
    for mut w in &mut windows {
        if w.title != text {
            w.title = text.clone();
        }
    }
}
