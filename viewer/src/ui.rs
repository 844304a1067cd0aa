//! The overlay of the interactive window: a panel with the run, the time, the speed, what is selected and the
//! run's KPIs at the current time (from `timeseries.csv` beside the replay), and a timeline along the bottom
//! that seeks where it is clicked or dragged. A click in the scene selects the agent under the cursor (the
//! nearest on screen within a few pixels) or else the building or ground the cursor's ray hits first.
//!
//! Offscreen captures get only a small clock label (reports want the time on the picture).

use crate::camera::OrbitCamera;
use crate::data::{AgentLayer, AgentLook, DrawnAgent, SceneData};
use crate::meshes::world;
use crate::scene::Viewer;
use bevy::prelude::*;
use bevy::window::PrimaryWindow;

/// Height of the timeline bar, px.
pub const TIMELINE_HEIGHT_PX: f32 = 14.0;
/// Margin around the overlay, px.
pub const MARGIN_PX: f32 = 8.0;
/// How near on screen the cursor must be to an agent to select it, px.
pub const PICK_RADIUS_PX: f32 = 12.0;
/// Step of the ray march that finds the building or ground under the cursor, m.
pub const RAY_STEP_M: f32 = 1.0;
/// Font size of the panel, px.
pub const FONT_PX: f32 = 13.0;

/// What the user clicked on.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub enum Selection {
    /// Nothing.
    #[default]
    None,
    /// An agent, followed over time by its stream and id.
    Agent(AgentLayer, u32),
    /// A building (index into the scene's buildings).
    Building(usize),
    /// A point on the ground (local frame, m).
    Ground(Vec2),
}

#[derive(Component)]
struct PanelText;

#[derive(Component)]
struct TimelineFill;

/// Where the left button went down (to tell a click from an orbit drag), px.
#[derive(Resource, Default)]
struct PressedAt(Option<Vec2>);

/// The interactive overlay: panel, timeline, selection.
pub struct OverlayPlugin;

impl Plugin for OverlayPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Selection>()
            .init_resource::<PressedAt>()
            .add_systems(Startup, spawn_overlay)
            .add_systems(Update, (timeline_seek, select).before(crate::scene::Draw))
            .add_systems(Update, update_overlay.after(crate::scene::Draw));
    }
}

/// A clock label for offscreen captures.
pub struct ClockLabelPlugin;

impl Plugin for ClockLabelPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(Startup, spawn_label).add_systems(Update, update_label.after(crate::scene::Draw));
    }
}

fn panel_node() -> (Node, BackgroundColor) {
    (
        Node {
            position_type: PositionType::Absolute,
            top: Val::Px(MARGIN_PX),
            left: Val::Px(MARGIN_PX),
            padding: UiRect::all(Val::Px(6.0)),
            ..default()
        },
        BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.6)),
    )
}

fn text(content: &str) -> (Text, TextFont, TextColor) {
    (Text::new(content), TextFont::from_font_size(FONT_PX), TextColor(Color::WHITE))
}

fn spawn_overlay(mut commands: Commands) {
    commands.spawn(panel_node()).with_children(|p| {
        p.spawn((text(""), PanelText));
    });
    commands
        .spawn((
            Node {
                position_type: PositionType::Absolute,
                bottom: Val::Px(MARGIN_PX),
                left: Val::Px(MARGIN_PX),
                right: Val::Px(MARGIN_PX),
                height: Val::Px(TIMELINE_HEIGHT_PX),
                ..default()
            },
            BackgroundColor(Color::srgba(0.0, 0.0, 0.0, 0.5)),
        ))
        .with_children(|bar| {
            bar.spawn((
                Node { width: Val::Percent(0.0), height: Val::Percent(100.0), ..default() },
                BackgroundColor(Color::srgb(0.95, 0.95, 0.95)),
                TimelineFill,
            ));
        });
}

fn spawn_label(mut commands: Commands) {
    commands.spawn(panel_node()).with_children(|p| {
        p.spawn((text(""), PanelText));
    });
}

fn update_label(viewer: Res<Viewer>, mut label: Query<&mut Text, With<PanelText>>) {
    let scene = &viewer.data.scene;
    let content = format!("{} - {}", viewer.playback.clock(scene.start_of_day_ms), scene.scenario);
    for mut t in &mut label {
        if t.0 != content {
            t.0 = content.clone();
        }
    }
}

/// Whether the cursor is over the timeline (the camera leaves it alone there).
pub fn on_timeline(window: &Window) -> bool {
    window.cursor_position().is_some_and(|c| c.y > window.height() - MARGIN_PX - TIMELINE_HEIGHT_PX - 4.0)
}

fn timeline_seek(
    buttons: Res<ButtonInput<MouseButton>>,
    window: Single<&Window, With<PrimaryWindow>>,
    mut viewer: ResMut<Viewer>,
) {
    if !buttons.pressed(MouseButton::Left) || !on_timeline(&window) {
        return;
    }
    let Some(c) = window.cursor_position() else { return };
    let f = ((c.x - MARGIN_PX) / (window.width() - 2.0 * MARGIN_PX)).clamp(0.0, 1.0);
    let end = viewer.playback.end_ms();
    viewer.playback.seek((f as f64 * end as f64) as u64);
}

/// Selects what is under the cursor on a click (a press and release without moving).
fn select(
    buttons: Res<ButtonInput<MouseButton>>,
    window: Single<&Window, With<PrimaryWindow>>,
    cameras: Query<(&Camera, &GlobalTransform, &OrbitCamera)>,
    viewer: Res<Viewer>,
    mut pressed: ResMut<PressedAt>,
    mut selection: ResMut<Selection>,
) {
    let cursor = window.cursor_position();
    if buttons.just_pressed(MouseButton::Left) {
        pressed.0 = cursor;
    }
    if !buttons.just_released(MouseButton::Left) || on_timeline(&window) {
        return;
    }
    let (Some(at), Some(down)) = (cursor, pressed.0.take()) else { return };
    if at.distance(down) > 3.0 {
        return; // a drag: the camera orbited
    }
    let Some((camera, cam_tf, orbit)) = cameras.iter().next() else { return };
    let scene = &viewer.data.scene;
    let datum = scene.datum_m();
    let scale = orbit.marker_scale();
    // The nearest agent on screen.
    let nearest = viewer
        .shown_agents
        .iter()
        .filter_map(|a| {
            let p = Vec3::from(world(a.pos, scene.ground(a.pos) - datum + scale));
            let s = camera.world_to_viewport(cam_tf, p).ok()?;
            Some((s.distance(at), a))
        })
        .filter(|(d, _)| *d <= PICK_RADIUS_PX)
        .min_by(|a, b| a.0.total_cmp(&b.0));
    *selection = match nearest {
        Some((_, a)) => Selection::Agent(a.layer, a.id),
        None => match camera.viewport_to_world(cam_tf, at) {
            Ok(ray) => march(scene, ray.origin, *ray.direction, 4.0 * orbit.distance),
            Err(_) => Selection::None,
        },
    };
}

/// The first building or ground point along a ray (world axes), up to `max_m`.
fn march(scene: &SceneData, origin: Vec3, dir: Vec3, max_m: f32) -> Selection {
    let datum = scene.datum_m();
    let mut t = 0.0;
    while t < max_m {
        let p = origin + dir * t;
        let local = Vec2::new(p.x, -p.z);
        let ground = scene.ground(local) - datum;
        if let Some(k) = scene.buildings.iter().position(|b| {
            p.y <= ground + b.height_m && {
                let ring: Vec<glam::Vec2> = b.footprint.iter().map(|q| glam::Vec2::new(q.x, q.y)).collect();
                machi::geo::shapes::contains(&ring, glam::Vec2::new(local.x, local.y))
            }
        }) {
            return Selection::Building(k);
        }
        if p.y <= ground && scene.on_terrain(local) {
            return Selection::Ground(local);
        }
        t += RAY_STEP_M;
    }
    Selection::None
}

fn look_name(look: AgentLook) -> &'static str {
    match look {
        AgentLook::CarMoving => "car, moving",
        AgentLook::CarQueued => "car, queued",
        AgentLook::BusMoving => "bus, moving",
        AgentLook::BusStanding => "bus, at a stop or queued",
        AgentLook::PedestrianWalking => "pedestrian, walking",
        AgentLook::PedestrianStanding => "pedestrian, standing",
        AgentLook::RobotIdle => "robot, idle at its depot",
        AgentLook::RobotCharging => "robot, charging",
        AgentLook::RobotDelivering => "robot, delivering",
        AgentLook::RobotReturning => "robot, returning",
        AgentLook::RobotStranded => "robot, at a depot without supply",
        AgentLook::RobotWaitingToCross => "robot, waiting to cross a road",
    }
}

fn describe(selection: &Selection, viewer: &Viewer) -> String {
    let scene = &viewer.data.scene;
    let water = |p: Vec2| -> String {
        match viewer.water_at(p) {
            Some(d) if d > 0.0 => format!("; water {d:.2} m"),
            _ => String::new(),
        }
    };
    match selection {
        Selection::None => "nothing (click an agent, a building or the ground)".into(),
        Selection::Agent(layer, id) => {
            match viewer.shown_agents.iter().find(|a: &&DrawnAgent| a.layer == *layer && a.id == *id) {
                Some(a) => format!(
                    "{:?} #{id}: {} at ({:.0}, {:.0}) m{}",
                    layer,
                    look_name(a.look),
                    a.pos.x,
                    a.pos.y,
                    water(a.pos)
                ),
                None => format!("{layer:?} #{id}: not on the move now"),
            }
        }
        Selection::Building(k) => {
            let b = &scene.buildings[*k];
            let c = b.footprint.iter().copied().sum::<Vec2>() / b.footprint.len() as f32;
            format!(
                "building {} ({}): {:.1} m high, ground {:.1} m{}",
                b.source_id,
                b.building_use,
                b.height_m,
                scene.ground(c),
                water(c)
            )
        }
        Selection::Ground(p) => format!("ground at ({:.0}, {:.0}) m: {:.1} m{}", p.x, p.y, scene.ground(*p), water(*p)),
    }
}

fn update_overlay(
    viewer: Res<Viewer>,
    selection: Res<Selection>,
    mut panel: Query<&mut Text, With<PanelText>>,
    mut fill: Query<&mut Node, With<TimelineFill>>,
) {
    let p = &viewer.playback;
    let scene = &viewer.data.scene;
    let mut lines = vec![
        format!(
            "{} - {}{}",
            scene.city,
            scene.scenario,
            match (&viewer.other, viewer.showing_b) {
                (None, _) => String::new(),
                (Some(_), false) => "   [A; Tab shows B]".into(),
                (Some(_), true) => "   [B; Tab shows A]".into(),
            }
        ),
        format!(
            "{}   x{}   {}",
            p.clock(scene.start_of_day_ms),
            p.speed(),
            if p.playing() { "playing" } else { "paused" }
        ),
        format!("selected: {}", describe(&selection, &viewer)),
    ];
    if let Some(ts) = &viewer.data.timeseries {
        if let Some((t, row)) = ts.at(p.t_ms()) {
            lines.push(format!("KPIs at {}:", crate::timeline::clock_of(scene.start_of_day_ms + t)));
            for (name, v) in ts.columns.iter().zip(row) {
                if let Some(v) = v {
                    lines.push(format!("  {name:<28} {v:>12.2}"));
                }
            }
        }
    }
    lines.push(
        "Space play | Up/Down speed | Left/Right +-1 min (Shift: +-1 h) | 1-7 layers | Tab A/B | drag: orbit/pan"
            .into(),
    );
    let content = deunicode::deunicode(&lines.join("\n"));
    for mut t in &mut panel {
        if t.0 != content {
            t.0 = content.clone();
        }
    }
    let share = if p.end_ms() > 0 { 100.0 * p.t_ms() as f32 / p.end_ms() as f32 } else { 0.0 };
    for mut n in &mut fill {
        if n.width != Val::Percent(share) {
            n.width = Val::Percent(share);
        }
    }
}
