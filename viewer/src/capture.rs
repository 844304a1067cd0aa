//! Headless rendering for reports and CI: the camera renders into an offscreen image (no window, no display
//! server; a software Vulkan driver such as Mesa's lavapipe is enough), and for each requested time the viewer
//! seeks, lets the renderer settle for a few frames, captures the image (`Screenshot`) and writes it as PNG,
//! through a temporary file renamed into place so no half-written picture is left behind.

use crate::scene::{spawn_scene, Viewer};
use bevy::camera::RenderTarget;
use bevy::prelude::*;
use bevy::render::render_resource::TextureFormat;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Frames rendered after the first seek before capturing (pipelines and meshes reach the GPU).
pub const FIRST_SETTLE_FRAMES: u32 = 8;
/// Frames rendered after each later seek before capturing.
pub const SETTLE_FRAMES: u32 = 3;

/// One picture to take: the replay time and where to write it.
#[derive(Clone, Debug, PartialEq)]
pub struct Shot {
    /// Time, ms since the replay's start.
    pub t_ms: u64,
    /// Output PNG.
    pub path: PathBuf,
}

/// What the capture did: pictures written and errors met.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// PNG files written, in shot order.
    pub written: Vec<PathBuf>,
    /// Errors (a picture that could not be converted or written).
    pub errors: Vec<String>,
    /// Time from the capture's start (the app's first frame) to the first picture written, s.
    pub first_picture_s: Option<f64>,
    /// For each shot, the time the viewer took to seek: read the replay at the new time and rebuild what
    /// moves (agents, water, grid), ms. GPU upload and rendering are not included.
    pub seek_ms: Vec<f64>,
}

impl Outcome {
    fn finished(&self) -> usize {
        self.written.len() + self.errors.len()
    }
}

/// Shared between the app and its caller, who reads it after the app exits.
pub type SharedOutcome = Arc<Mutex<Outcome>>;

fn lock(o: &SharedOutcome) -> std::sync::MutexGuard<'_, Outcome> {
    o.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where a capture is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// Seek to the next shot's time.
    Seek,
    /// Frames rendered since the seek.
    Settle(u32),
    /// The screenshot is requested; waiting for it to be written.
    Capturing,
}

/// The shots to take and the offscreen target.
#[derive(Resource)]
struct CapturePlan {
    shots: Vec<Shot>,
    next: usize,
    step: Step,
    size: UVec2,
    target: Option<Handle<Image>>,
    outcome: SharedOutcome,
    /// When the capture started.
    started: Instant,
    /// When the current seek started, until the drawing systems have run.
    seek_started: Option<Instant>,
}

/// Renders offscreen and takes `shots` in order, then exits; `outcome` says what was written.
pub struct CapturePlugin {
    /// The pictures to take.
    pub shots: Vec<Shot>,
    /// Picture size, pixels.
    pub size: UVec2,
    /// Filled as pictures are written.
    pub outcome: SharedOutcome,
}

impl Plugin for CapturePlugin {
    fn build(&self, app: &mut App) {
        app.insert_resource(CapturePlan {
            shots: self.shots.clone(),
            next: 0,
            step: Step::Seek,
            size: self.size,
            target: None,
            outcome: Arc::clone(&self.outcome),
            started: Instant::now(),
            seek_started: None,
        })
        .add_systems(Startup, render_offscreen.after(spawn_scene))
        .add_systems(Update, (drive.before(crate::scene::Draw), time_seek.after(crate::scene::Draw)));
    }
}

/// Points the camera at an offscreen image of the plan's size.
fn render_offscreen(
    mut commands: Commands,
    mut plan: ResMut<CapturePlan>,
    mut images: ResMut<Assets<Image>>,
    cameras: Query<Entity, With<Camera3d>>,
) {
    let image = Image::new_target_texture(plan.size.x, plan.size.y, TextureFormat::Rgba8UnormSrgb, None);
    let handle = images.add(image);
    for camera in &cameras {
        commands.entity(camera).insert(RenderTarget::Image(handle.clone().into()));
    }
    plan.target = Some(handle);
}

/// Steps through the shots: seek, settle, capture, next; exits when all are written.
fn drive(
    mut commands: Commands,
    mut plan: ResMut<CapturePlan>,
    mut viewer: ResMut<Viewer>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(shot) = plan.shots.get(plan.next).cloned() else {
        let failed = !lock(&plan.outcome).errors.is_empty();
        exit.write(if failed { AppExit::error() } else { AppExit::Success });
        return;
    };
    match plan.step {
        Step::Seek => {
            viewer.playback.seek(shot.t_ms);
            plan.step = Step::Settle(0);
            plan.seek_started = Some(Instant::now());
        }
        Step::Settle(n) => {
            let needed = if plan.next == 0 { FIRST_SETTLE_FRAMES } else { SETTLE_FRAMES };
            if n + 1 < needed {
                plan.step = Step::Settle(n + 1);
                return;
            }
            let Some(target) = plan.target.clone() else { return };
            let outcome = Arc::clone(&plan.outcome);
            let started = plan.started;
            commands.spawn(Screenshot::image(target)).observe(move |captured: On<ScreenshotCaptured>| {
                let result = write_png(&captured.image, &shot.path);
                let mut o = lock(&outcome);
                match result {
                    Ok(()) => {
                        if o.written.is_empty() {
                            o.first_picture_s = Some(started.elapsed().as_secs_f64());
                        }
                        o.written.push(shot.path.clone());
                    }
                    Err(e) => o.errors.push(format!("{}: {e}", shot.path.display())),
                }
            });
            plan.step = Step::Capturing;
        }
        Step::Capturing => {
            if lock(&plan.outcome).finished() > plan.next {
                plan.next += 1;
                plan.step = Step::Seek;
            }
        }
    }
}

/// Records how long the seek of this frame took (the drawing systems have just run).
fn time_seek(mut plan: ResMut<CapturePlan>) {
    if let Some(start) = plan.seek_started.take() {
        lock(&plan.outcome).seek_ms.push(start.elapsed().as_secs_f64() * 1000.0);
    }
}

/// Writes `image` as an RGB PNG at `path` through a temporary file in the same folder.
fn write_png(image: &Image, path: &std::path::Path) -> Result<(), String> {
    let rgb =
        image.clone().try_into_dynamic().map_err(|e| format!("the rendered frame cannot be read: {e}"))?.to_rgb8();
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".machi-viewer-")
        .suffix(".png")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a temporary file in {}: {e}", dir.display()))?;
    rgb.write_to(&mut std::io::BufWriter::new(tmp.as_file()), image::ImageFormat::Png)
        .map_err(|e| format!("cannot write the PNG: {e}"))?;
    // A picture for anyone to read, as a plainly created file would be (temporary files are private).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("cannot set the PNG's permissions: {e}"))?;
    }
    tmp.persist(path).map_err(|e| format!("cannot move the PNG into place: {}", e.error))?;
    Ok(())
}
