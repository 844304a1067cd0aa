//! The orbit camera: it looks at a focus point on the ground from a distance, a heading (yaw) and a pitch.
//! Mouse: left drag orbits, right drag pans, the wheel zooms. Named presets frame the city for screenshots.

use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::prelude::*;

/// Closest the camera comes to its focus, m.
pub const MIN_DISTANCE_M: f32 = 20.0;
/// Farthest the camera goes from its focus, m.
pub const MAX_DISTANCE_M: f32 = 50_000.0;
/// Agents are drawn at life size up to this camera distance and scaled up beyond it, so they stay visible
/// from afar (m).
pub const LIFE_SIZE_DISTANCE_M: f32 = 300.0;
/// Orbit speed, radians per pixel of mouse motion.
const ORBIT_RAD_PER_PX: f32 = 0.005;
/// Zoom factor per wheel line.
const ZOOM_PER_LINE: f32 = 0.9;

/// An orbit camera's pose.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct OrbitCamera {
    /// The point looked at, world axes, m.
    pub focus: Vec3,
    /// Distance from the focus, m.
    pub distance: f32,
    /// Heading the camera looks along, radians clockwise from north.
    pub yaw: f32,
    /// Angle below the horizon the camera looks down at, radians.
    pub pitch: f32,
}

impl OrbitCamera {
    /// The camera's transform.
    pub fn transform(&self) -> Transform {
        // Looking along (sin yaw, −cos yaw) on the map at `pitch` down: the camera sits behind and above.
        let look = Vec3::new(self.yaw.sin() * self.pitch.cos(), -self.pitch.sin(), -self.yaw.cos() * self.pitch.cos());
        Transform::from_translation(self.focus - look * self.distance).looking_at(self.focus, Vec3::Y)
    }

    /// How much larger than life agents are drawn at this distance (at least 1).
    pub fn marker_scale(&self) -> f32 {
        (self.distance / LIFE_SIZE_DISTANCE_M).max(1.0)
    }
}

/// Framings of the city a screenshot can ask for by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CameraPreset {
    /// The whole city from high up, looking north.
    Overview,
    /// The city centre from a lower angle, looking north.
    Street,
    /// Straight down over the whole city (a map).
    Top,
}

impl CameraPreset {
    /// The pose that frames `extent` (south-west and north-east corners, local frame, m) with the ground at
    /// `ground_y` (world y of the ground at the centre, m) for a view `fov_y` radians high.
    pub fn pose(self, extent: (Vec2, Vec2), ground_y: f32, fov_y: f32) -> OrbitCamera {
        let centre = (extent.0 + extent.1) / 2.0;
        let focus = Vec3::new(centre.x, ground_y, -centre.y);
        let size = (extent.1 - extent.0).max_element().max(100.0);
        // Distance at which `size` fills the view height.
        let fill = 0.5 * size / (0.5 * fov_y).tan();
        match self {
            CameraPreset::Overview => OrbitCamera { focus, distance: 0.75 * fill, yaw: 0.0, pitch: 50f32.to_radians() },
            CameraPreset::Street => OrbitCamera { focus, distance: 0.25 * fill, yaw: 0.0, pitch: 30f32.to_radians() },
            CameraPreset::Top => OrbitCamera { focus, distance: 0.8 * fill, yaw: 0.0, pitch: 89.9f32.to_radians() },
        }
    }
}

/// Moves the orbit camera with the mouse.
pub fn orbit_with_mouse(
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut cameras: Query<(&mut OrbitCamera, &mut Transform)>,
    windows: Query<&Window, With<bevy::window::PrimaryWindow>>,
) {
    if windows.iter().any(crate::ui::on_timeline) {
        return; // the timeline has the mouse
    }
    for (mut cam, mut transform) in &mut cameras {
        let before = *cam;
        let d = motion.delta;
        if buttons.pressed(MouseButton::Left) {
            cam.yaw += d.x * ORBIT_RAD_PER_PX;
            cam.pitch = (cam.pitch + d.y * ORBIT_RAD_PER_PX).clamp(5f32.to_radians(), 89.9f32.to_radians());
        }
        if buttons.pressed(MouseButton::Right) {
            // Pan on the ground plane, as far per pixel as the view is wide at the focus (about).
            let per_px = cam.distance / 800.0;
            let (right, forward) =
                (Vec3::new(cam.yaw.cos(), 0.0, cam.yaw.sin()), Vec3::new(cam.yaw.sin(), 0.0, -cam.yaw.cos()));
            cam.focus += (-d.x * right + d.y * forward) * per_px;
        }
        if scroll.delta.y != 0.0 {
            cam.distance = (cam.distance * ZOOM_PER_LINE.powf(scroll.delta.y)).clamp(MIN_DISTANCE_M, MAX_DISTANCE_M);
        }
        if *cam != before {
            *transform = cam.transform();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_camera_looks_at_its_focus_from_the_south() {
        let cam =
            OrbitCamera { focus: Vec3::new(10.0, 0.0, -20.0), distance: 100.0, yaw: 0.0, pitch: 45f32.to_radians() };
        let t = cam.transform();
        assert!((t.translation.distance(cam.focus) - 100.0).abs() < 1e-3);
        assert!(t.translation.y > 0.0 && t.translation.z > cam.focus.z, "above and south of the focus");
        assert!(t.forward().dot((cam.focus - t.translation).normalize()) > 0.9999);
    }

    #[test]
    fn presets_frame_the_city_and_agents_grow_with_distance() {
        let extent = (Vec2::new(-1000.0, -500.0), Vec2::new(1000.0, 500.0));
        let top = CameraPreset::Top.pose(extent, 0.0, 45f32.to_radians());
        let street = CameraPreset::Street.pose(extent, 0.0, 45f32.to_radians());
        assert!(street.distance < top.distance);
        assert_eq!(top.focus, Vec3::ZERO);
        assert!(top.marker_scale() > 1.0);
        assert_eq!(OrbitCamera { distance: 50.0, ..top }.marker_scale(), 1.0);
    }
}
