//! Headless rendering for reports and CI: the camera renders into an offscreen image (no window, no display
//! server; a software Vulkan driver such as Mesa's lavapipe is enough), and for each requested time the viewer
//! seeks, lets the renderer settle (the first picture waits until every pipeline is compiled), captures the image (`Screenshot`) and writes it as PNG,
//! through a temporary file renamed into place so no half-written picture is left behind.

use crate::scene::{spawn_scene, Viewer};
use bevy::camera::{RenderTarget, Viewport};
use bevy::prelude::*;
use bevy::render::render_resource::{PipelineCache, TextureFormat};
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::render::{ExtractSchedule, MainWorld, RenderApp};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The most frames the first picture waits for the renderer to be ready (shaders loaded, pipelines
/// compiled) before the capture gives up with an error.
pub const MAX_WARM_UP_FRAMES: u32 = 600;
/// While the renderer warms up, the camera draws into a viewport this many times smaller than the picture
/// (same aspect ratio, so the same things are in view and get their pipelines): a software rasteriser then
/// spends next to nothing on frames nobody sees.
pub const WARM_UP_VIEWPORT_DIVISOR: u32 = 64;

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
    /// Time from opening the replay to the renderer being up (Bevy's plugins built, GPU device made), s.
    pub renderer_ready_s: Option<f64>,
    /// Time from opening the replay to the scene being built (meshes made, entities spawned), s.
    pub scene_built_s: Option<f64>,
    /// Time from opening the replay to the renderer being ready for the first picture (every pipeline
    /// compiled), s.
    pub warmed_up_s: Option<f64>,
    /// Frames rendered (in the small warm-up viewport) until then.
    pub warm_up_frames: Option<u32>,
    /// Time from opening the replay to the first picture written, s.
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
    /// Frames rendered since the first seek while the renderer warms up.
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
    /// When the replay began to be opened.
    opened: Instant,
    /// The renderer's pipelines as seen in the previous frame (the first picture waits until they are stable).
    last_progress: Option<PipelineProgress>,
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
    /// When the replay began to be opened: the start-up times in [`Outcome`] count from it.
    pub opened: Instant,
}

impl Plugin for CapturePlugin {
    fn build(&self, app: &mut App) {
        // Built after DefaultPlugins, whose RenderPlugin has made the GPU device by now.
        lock(&self.outcome).renderer_ready_s = Some(self.opened.elapsed().as_secs_f64());
        app.insert_resource(CapturePlan {
            shots: self.shots.clone(),
            next: 0,
            step: Step::Seek,
            size: self.size,
            target: None,
            outcome: Arc::clone(&self.outcome),
            opened: self.opened,
            last_progress: None,
            seek_started: None,
        })
        .init_resource::<PipelineProgress>()
        .add_systems(Startup, render_offscreen.after(spawn_scene))
        .add_systems(Update, (drive.before(crate::scene::Draw), time_seek.after(crate::scene::Draw)));
        if let Some(render_app) = app.get_sub_app_mut(RenderApp) {
            render_app.add_systems(ExtractSchedule, report_pipelines);
        }
    }
}

/// The render world's pipeline cache, copied into the main world each frame: the first picture is taken
/// once every pipeline asked for is compiled and no new one was asked for in the last frame (until then
/// some of the scene may be missing from the picture: shaders load asynchronously).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
struct PipelineProgress {
    /// Pipelines the renderer has been asked for so far.
    requested: usize,
    /// Of those, the ones not compiled yet (shader still loading, or compiling).
    waiting: usize,
}

impl PipelineProgress {
    fn settled_since(self, before: Option<PipelineProgress>) -> bool {
        self.requested > 0 && self.waiting == 0 && before == Some(self)
    }
}

fn report_pipelines(mut main: ResMut<MainWorld>, cache: Res<PipelineCache>) {
    let now = PipelineProgress { requested: cache.pipelines().count(), waiting: cache.waiting_pipelines().count() };
    if let Some(mut progress) = main.get_resource_mut::<PipelineProgress>() {
        progress.set_if_neq(now);
    }
}

/// Points the camera at an offscreen image of the plan's size.
fn render_offscreen(
    mut commands: Commands,
    mut plan: ResMut<CapturePlan>,
    mut images: ResMut<Assets<Image>>,
    mut cameras: Query<(Entity, &mut Camera), With<Camera3d>>,
) {
    lock(&plan.outcome).scene_built_s = Some(plan.opened.elapsed().as_secs_f64());
    let image = Image::new_target_texture(plan.size.x, plan.size.y, TextureFormat::Rgba8UnormSrgb, None);
    let handle = images.add(image);
    for (camera, mut settings) in &mut cameras {
        // No multisampling: a software rasteriser (lavapipe) pays for every sample, and MSAA x4 made each
        // offscreen frame of the storm day about 2.7 times slower there.
        // The clock label (UI) goes on this camera's picture: there is no window camera to default to.
        commands.entity(camera).insert((RenderTarget::Image(handle.clone().into()), Msaa::Off, IsDefaultUiCamera));
        settings.viewport = Some(Viewport {
            physical_size: (plan.size + UVec2::splat(WARM_UP_VIEWPORT_DIVISOR - 1)) / WARM_UP_VIEWPORT_DIVISOR,
            ..default()
        });
    }
    plan.target = Some(handle);
}

/// Steps through the shots: seek, settle, capture, next; exits when all are written. A finished capture
/// moves on to the next seek in the same frame, and the last one turns the cameras off so the exit frame
/// renders nothing.
fn drive(
    mut commands: Commands,
    mut plan: ResMut<CapturePlan>,
    mut viewer: ResMut<Viewer>,
    mut exit: MessageWriter<AppExit>,
    mut cameras: Query<&mut Camera>,
    progress: Res<PipelineProgress>,
) {
    if plan.step == Step::Capturing {
        if lock(&plan.outcome).finished() <= plan.next {
            return;
        }
        plan.next += 1;
        plan.step = Step::Seek;
    }
    let Some(shot) = plan.shots.get(plan.next).cloned() else {
        let failed = !lock(&plan.outcome).errors.is_empty();
        exit.write(if failed { AppExit::error() } else { AppExit::Success });
        for mut camera in &mut cameras {
            camera.is_active = false;
        }
        return;
    };
    if plan.step == Step::Seek {
        viewer.playback.seek(shot.t_ms);
        plan.step = Step::Settle(0);
        plan.seek_started = Some(Instant::now());
    }
    let Step::Settle(n) = plan.step else { return };
    if plan.next == 0 {
        let ready = progress.settled_since(plan.last_progress);
        plan.last_progress = Some(*progress);
        if ready {
            let mut o = lock(&plan.outcome);
            o.warmed_up_s = Some(plan.opened.elapsed().as_secs_f64());
            o.warm_up_frames = Some(n);
            for mut camera in &mut cameras {
                camera.viewport = None;
            }
        } else {
            if n >= MAX_WARM_UP_FRAMES {
                lock(&plan.outcome).errors.push(format!(
                    "the renderer was not ready after {MAX_WARM_UP_FRAMES} frames ({} of {} pipelines waiting)",
                    progress.waiting, progress.requested
                ));
                exit.write(AppExit::error());
                return;
            }
            plan.step = Step::Settle(n + 1);
            return;
        }
    }
    // Later pictures are taken in their seek's own frame: the seek's meshes reach the GPU in the frame that
    // draws them (pipelines compile synchronously offscreen). Pictures of the storm day taken this way and
    // after 3 more frames were checked to be pixel-identical.
    let Some(target) = plan.target.clone() else { return };
    let outcome = Arc::clone(&plan.outcome);
    let opened = plan.opened;
    commands.spawn(Screenshot::image(target)).observe(move |captured: On<ScreenshotCaptured>| {
        let result = write_png(&captured.image, &shot.path);
        let mut o = lock(&outcome);
        match result {
            Ok(()) => {
                if o.written.is_empty() {
                    o.first_picture_s = Some(opened.elapsed().as_secs_f64());
                }
                o.written.push(shot.path.clone());
            }
            Err(e) => o.errors.push(format!("{}: {e}", shot.path.display())),
        }
    });
    plan.step = Step::Capturing;
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
