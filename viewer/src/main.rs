//! `machi-viewer`: watch a Machi replay in 3D, or render it offscreen.
//!
//! ```text
//! machi-viewer out/andorra-storm/replay.machi                       # a window: Space plays, arrows seek
//! machi-viewer REPLAY --screenshot storm.png --at 17:00             # one picture, no window
//! machi-viewer REPLAY --frames frames/ --from 15:00 --to 18:00 --every 60   # a video's frames
//! ```

use anyhow::{bail, Context, Result};
use bevy::app::ScheduleRunnerPlugin;
use bevy::prelude::*;
use bevy::render::RenderPlugin;
use bevy::window::ExitCondition;
use bevy::winit::WinitPlugin;
use clap::Parser;
use machi_viewer::camera::{orbit_with_mouse, CameraPreset};
use machi_viewer::capture::{CapturePlugin, Outcome, Shot};
use machi_viewer::data::ReplayData;
use machi_viewer::parse_time;
use machi_viewer::scene::{keyboard, title, Draw, ScenePlugin, Viewer};
use machi_viewer::ui::{ClockLabelPlugin, OverlayPlugin};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "machi-viewer", about = "Watch a Machi replay in 3D, or render it offscreen to PNG.")]
struct Args {
    /// A replay written by `machi run` (replay.machi).
    replay: PathBuf,
    /// A second run of the same city (e.g. with an intervention): Tab switches between the two.
    #[arg(long, value_name = "B.machi")]
    compare: Option<PathBuf>,
    /// Render one picture offscreen to this PNG (no window) at `--at`.
    #[arg(long, value_name = "OUT.png", requires = "at")]
    screenshot: Option<PathBuf>,
    /// Time of the screenshot: seconds since the replay's start, or a time of day HH:MM[:SS].
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// Render a sequence of pictures offscreen into this folder (frame-000000.png, ...).
    #[arg(long, value_name = "DIR", requires_all = ["from", "to", "every"], conflicts_with = "screenshot")]
    frames: Option<PathBuf>,
    /// First time of `--frames` (seconds since the start, or HH:MM[:SS]).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Last time of `--frames`.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Interval between frames, seconds of replay time.
    #[arg(long, value_name = "SECONDS")]
    every: Option<f64>,
    /// How the camera frames the city.
    #[arg(long, value_enum, default_value = "overview")]
    camera: CameraPreset,
    /// Picture size for offscreen rendering, WIDTHxHEIGHT pixels.
    #[arg(long, default_value = "1280x720")]
    size: String,
}

fn parse_size(text: &str) -> Result<UVec2> {
    let (w, h) = text.split_once('x').context("--size: give WIDTHxHEIGHT, e.g. 1280x720")?;
    let (w, h): (u32, u32) = (w.parse().context("--size: width")?, h.parse().context("--size: height")?);
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        bail!("--size: {w}x{h} is outside 16..8192 pixels per side");
    }
    Ok(UVec2::new(w, h))
}

/// The pictures the arguments ask for (empty: interactive).
fn shots(args: &Args, data: &ReplayData) -> Result<Vec<Shot>> {
    let start = data.scene.start_of_day_ms;
    let time = |name: &str, text: &str| parse_time(text, start).map_err(|e| anyhow::anyhow!("--{name}: {e}"));
    if let (Some(out), Some(at)) = (&args.screenshot, &args.at) {
        return Ok(vec![Shot { t_ms: time("at", at)?, path: out.clone() }]);
    }
    let (Some(dir), Some(from), Some(to), Some(every)) = (&args.frames, &args.from, &args.to, args.every) else {
        return Ok(Vec::new());
    };
    let (from, to) = (time("from", from)?, time("to", to)?);
    if !(every.is_finite() && every > 0.0) {
        bail!("--every: {every} s; it must be > 0");
    }
    if to < from {
        bail!("--to is before --from");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create the frames folder", dir.display()))?;
    let step = (every * 1000.0).round().max(1.0) as u64;
    Ok((from..=to)
        .step_by(step as usize)
        .enumerate()
        .map(|(k, t_ms)| Shot { t_ms, path: dir.join(format!("frame-{k:06}.png")) })
        .collect())
}

/// Runs `f`, turning a panic into its message (and keeping the panic's own report off the terminal).
fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown failure".into())
    })
}

fn main() -> Result<()> {
    let args = Args::parse();
    let size = parse_size(&args.size)?;
    let opening = Instant::now();
    let data = ReplayData::open(&args.replay)?;
    let open_s = opening.elapsed().as_secs_f64();
    let shots = shots(&args, &data)?;
    let end = data.scene.end_ms;
    if let Some(late) = shots.iter().find(|s| s.t_ms > end) {
        bail!("{}: the replay ends at {} s; {} s is after it", args.replay.display(), end / 1000, late.t_ms / 1000);
    }
    let other = match &args.compare {
        Some(b) => Some(ReplayData::open(b)?),
        None => None,
    };
    let viewer = Viewer::new(data, other, args.camera)?;
    let mut app = App::new();
    if shots.is_empty() {
        app.add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window { title: format!("Machi — {}", args.replay.display()), ..default() }),
            ..default()
        }))
        .insert_resource(viewer)
        .add_plugins((ScenePlugin, OverlayPlugin))
        .add_systems(Update, (keyboard, title, orbit_with_mouse).before(Draw));
        app.run();
        return Ok(());
    }
    let outcome = Arc::new(Mutex::new(Outcome::default()));
    // Bevy panics when it finds no GPU; turn that into an error that says what to install.
    let rendering = catch_quietly(move || {
        app.add_plugins(
            DefaultPlugins
                .set(WindowPlugin { primary_window: None, exit_condition: ExitCondition::DontExit, ..default() })
                .set(RenderPlugin { synchronous_pipeline_compilation: true, ..default() })
                .disable::<WinitPlugin>(),
        );
        app
    });
    let mut app = rendering.map_err(|message| {
        anyhow::anyhow!(
            "cannot start the renderer: {message}\n(offscreen rendering needs a Vulkan driver; without a GPU, Mesa's \
             software one: Debian's mesa-vulkan-drivers)"
        )
    })?;
    // Without winit, the schedule runner drives the frames, as fast as they render.
    app.add_plugins(ScheduleRunnerPlugin::run_loop(Duration::ZERO))
        .insert_resource(viewer)
        .add_plugins((ScenePlugin, ClockLabelPlugin))
        .add_plugins(CapturePlugin { shots: shots.clone(), size, outcome: Arc::clone(&outcome), opened: opening });
    let exit = app.run();
    let outcome = outcome.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for e in &outcome.errors {
        eprintln!("error: {e}");
    }
    if !outcome.errors.is_empty() || exit != AppExit::Success || outcome.written.len() != shots.len() {
        bail!("{} of {} pictures written", outcome.written.len(), shots.len());
    }
    for p in &outcome.written {
        println!("{}", p.display());
    }
    let mut seeks = outcome.seek_ms.clone();
    seeks.sort_by(f64::total_cmp);
    eprintln!(
        "machi-viewer: replay opened in {open_s:.3} s, renderer up at {:.2} s, scene built at {:.2} s, pipelines \
         ready at {:.2} s (after {} warm-up frames), first picture written at {:.2} s; seek (read + rebuild) median \
         {:.1} ms, max {:.1} ms over {}",
        outcome.renderer_ready_s.unwrap_or(f64::NAN),
        outcome.scene_built_s.unwrap_or(f64::NAN),
        outcome.warmed_up_s.unwrap_or(f64::NAN),
        outcome.warm_up_frames.unwrap_or(0),
        outcome.first_picture_s.unwrap_or(f64::NAN),
        seeks.get(seeks.len() / 2).copied().unwrap_or(f64::NAN),
        seeks.last().copied().unwrap_or(f64::NAN),
        seeks.len()
    );
    Ok(())
}
