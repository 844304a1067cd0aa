//! Fork–join for the engine's parallel phases: run independent pieces of work on the task pool and get
//! their results back in piece order, so what a caller does with them never depends on the thread count.
//!
//! Two ways to run the pieces, one API ([`run_pieces`], [`par_chunks_mut`], [`par_map_ranges`]):
//!
//! - **A pool scope per phase** (the default): each phase spawns its pieces on bevy's `ComputeTaskPool`
//!   and the calling thread works through them too. Idle workers sleep, so a phase pays one wake-up per
//!   worker (tens of µs on a loaded virtual machine), which is nothing next to a phase of milliseconds.
//! - **A team for a hot loop** ([`with_team`]): a model whose step is a quick succession of short parallel
//!   phases (the microscopic traffic step has three per second of simulated time; the flood solver two per
//!   adaptive sub-step) wraps the whole loop in `with_team`. Its helpers then stay awake between phases,
//!   spinning briefly and yielding the core to anyone else who wants it, and every phase inside starts
//!   without a wake-up. Helpers are tasks on the same pool, so no thread is added. This is the
//!   "spin, then yield" wait of OpenMP's `OMP_WAIT_POLICY=active` and of Rayon's idle workers, kept to the
//!   code that asks for it: spinning through phases that are far apart (the robot crowd) would only burn
//!   the core the serial work needs.
//!
//! Pieces are claimed from a shared counter, so a helper that starts late (or never, if the pool is busy
//! elsewhere) only leaves more pieces to the caller: results are the same whoever runs what.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;

/// Busy-wait rounds (a CPU spin hint each, whose length depends on the CPU: from a few to some 40 ns) a team
/// helper makes before it yields its core between polls. Short enough that a helper soon gives way to a
/// thread with real work, long enough to catch a phase that follows the previous one at once. Chosen, not
/// tuned: other values were not measured.
const SPIN_ROUNDS_BEFORE_YIELD: u32 = 1_000;

fn compute_pool() -> &'static bevy_tasks::TaskPool {
    bevy_tasks::ComputeTaskPool::get_or_init(bevy_tasks::TaskPool::default)
}

thread_local! {
    /// The team the current thread coordinates, if it is inside [`with_team`].
    static CURRENT_TEAM: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
}

/// Runs every piece and returns their results in piece order: inline when there is one piece, on the
/// current thread's team inside [`with_team`], else in one scope on the task pool.
pub fn run_pieces<R: Send + 'static, F: FnOnce() -> R + Send>(pieces: Vec<F>) -> Vec<R> {
    if pieces.len() <= 1 {
        return pieces.into_iter().map(|f| f()).collect();
    }
    let team = CURRENT_TEAM.with(Cell::get);
    if !team.is_null() {
        // SAFETY: the pointer is set by `with_team` on this thread and cleared before its team is dropped.
        return unsafe { &*team }.run(pieces);
    }
    let mut parts: Vec<(usize, R)> = compute_pool().scope(|s| {
        for (k, f) in pieces.into_iter().enumerate() {
            s.spawn(async move { (k, f()) });
        }
    });
    parts.sort_by_key(|(k, _)| *k);
    parts.into_iter().map(|(_, r)| r).collect()
}

/// Runs `work(first index, chunk)` over `chunks` contiguous pieces of `items` (inline when `chunks` ≤ 1)
/// and returns the results in chunk order.
pub fn par_chunks_mut<T: Send, R: Send + 'static>(
    items: &mut [T],
    chunks: usize,
    work: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    if chunks <= 1 || items.len() <= 1 {
        return vec![work(0, items)];
    }
    let per = items.len().div_ceil(chunks);
    let work = &work;
    run_pieces(items.chunks_mut(per).enumerate().map(|(k, chunk)| move || work(k * per, chunk)).collect())
}

/// Runs `work(range)` over `chunks` contiguous ranges of `0..len` (inline when `chunks` ≤ 1) and returns
/// the results in range order.
pub fn par_map_ranges<R: Send + 'static>(
    len: usize,
    chunks: usize,
    work: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    if chunks <= 1 || len <= 1 {
        return vec![work(0..len)];
    }
    let per = len.div_ceil(chunks);
    let work = &work;
    run_pieces((0..len).step_by(per).map(|start| move || work(start..(start + per).min(len))).collect())
}

/// Runs `hot_loop` with a team: the pool's workers join as helpers for its duration and stay awake between
/// its parallel phases, so each phase inside starts at once (see the module doc). A plain call when the
/// loop will not split its phases (`parallel` false: no helper need stay awake), with one thread, and when
/// the thread already leads a team.
pub fn with_team<R>(parallel: bool, hot_loop: impl FnOnce() -> R) -> R {
    let helpers = super::pool_threads().saturating_sub(1);
    if !parallel || helpers == 0 || !CURRENT_TEAM.with(Cell::get).is_null() {
        return hot_loop();
    }
    let team = Team::new(std::thread::current().id());
    let mut outcome = None;
    compute_pool().scope(|s| {
        for _ in 0..helpers {
            s.spawn(async { team.help() });
        }
        CURRENT_TEAM.with(|t| t.set(&team));
        let result = catch_unwind(AssertUnwindSafe(hot_loop));
        CURRENT_TEAM.with(|t| t.set(std::ptr::null()));
        team.finished.store(true, Ordering::Release);
        outcome = Some(result);
    });
    match outcome.expect("the scope ran its body") {
        Ok(r) => r,
        Err(panic) => resume_unwind(panic),
    }
}

/// One published phase: a type-erased `run(piece)` on the coordinator's stack and the number of pieces.
#[derive(Clone, Copy)]
struct Job {
    run: *const (dyn Fn(usize) + Sync),
    pieces: usize,
}

// SAFETY: a `Job` is only dereferenced by helpers registered in `Team::active`, and the coordinator keeps
// the closure alive until it has withdrawn the job and seen `active` fall to zero.
unsafe impl Send for Job {}

/// A coordinator and its helpers (see [`with_team`]).
struct Team {
    coordinator: ThreadId,
    /// Bumped each time a phase is published.
    generation: AtomicU64,
    /// The phase on offer; helpers register in `active` under this lock.
    job: Mutex<Option<Job>>,
    /// The next piece to claim.
    next: AtomicUsize,
    /// Pieces finished.
    done: AtomicUsize,
    /// Helpers working on the current job.
    active: AtomicUsize,
    /// The hot loop has ended: helpers return.
    finished: AtomicBool,
    /// The first panic of a piece, re-raised on the coordinator.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// Slots written by exactly one claimant each (a piece index is claimed once from `Team::next`).
struct Slots<T>(Vec<UnsafeCell<Option<T>>>);

// SAFETY: each slot is accessed only by the thread that claimed its index, and read back by the
// coordinator after `done` (Release/Acquire) shows every piece finished.
unsafe impl<T: Send> Sync for Slots<T> {}

impl<T> Slots<T> {
    /// Takes slot `k`'s value.
    ///
    /// # Safety
    /// No other thread may access slot `k` meanwhile.
    unsafe fn take(&self, k: usize) -> T {
        unsafe { (*self.0[k].get()).take() }.expect("each slot is taken once")
    }

    /// Fills slot `k`.
    ///
    /// # Safety
    /// No other thread may access slot `k` meanwhile.
    unsafe fn put(&self, k: usize, value: T) {
        unsafe { *self.0[k].get() = Some(value) };
    }
}

impl Team {
    fn new(coordinator: ThreadId) -> Team {
        Team {
            coordinator,
            generation: AtomicU64::new(0),
            job: Mutex::new(None),
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
            panic: Mutex::new(None),
        }
    }

    /// Claims and runs pieces of `job` until none is left.
    fn work_on(&self, job: Job) {
        loop {
            let k = self.next.fetch_add(1, Ordering::AcqRel);
            if k >= job.pieces {
                return;
            }
            // SAFETY: see `Job`.
            let run = unsafe { &*job.run };
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run(k))) {
                self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(panic);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }

    /// A helper's life: wait for phases (spinning, then yielding), work on each, return when the loop ends.
    fn help(&self) {
        if std::thread::current().id() == self.coordinator {
            // The coordinator ticking the pool after its loop ended picked this helper up: nothing to do.
            return;
        }
        let (mut seen, mut idle) = (0u64, 0u32);
        while !self.finished.load(Ordering::Acquire) {
            let generation = self.generation.load(Ordering::Acquire);
            if generation == seen {
                if idle < SPIN_ROUNDS_BEFORE_YIELD {
                    idle += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            seen = generation;
            idle = 0;
            let job = {
                let offer = self.job.lock().unwrap_or_else(|e| e.into_inner());
                let Some(job) = *offer else { continue };
                self.active.fetch_add(1, Ordering::AcqRel);
                job
            };
            self.work_on(job);
            self.active.fetch_sub(1, Ordering::Release);
        }
    }

    /// Runs one phase with whichever helpers are awake; the coordinator claims pieces too.
    fn run<R: Send, F: FnOnce() -> R + Send>(&self, pieces: Vec<F>) -> Vec<R> {
        let n = pieces.len();
        let inputs = Slots(pieces.into_iter().map(|f| UnsafeCell::new(Some(f))).collect());
        let outputs: Slots<R> = Slots((0..n).map(|_| UnsafeCell::new(None)).collect());
        let run = {
            let (inputs, outputs) = (&inputs, &outputs);
            move |k: usize| {
                // SAFETY: piece `k` was claimed by this thread alone (see `Slots`).
                let f = unsafe { inputs.take(k) };
                unsafe { outputs.put(k, f()) };
            }
        };
        let run: &(dyn Fn(usize) + Sync) = &run;
        // SAFETY: the lifetime is erased for the helpers; this function does not return before every
        // helper has let go of the job (below).
        let run: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(run) };
        let job = Job { run, pieces: n };
        {
            let mut offer = self.job.lock().unwrap_or_else(|e| e.into_inner());
            self.next.store(0, Ordering::Relaxed);
            self.done.store(0, Ordering::Relaxed);
            *offer = Some(job);
            self.generation.fetch_add(1, Ordering::Release);
        }
        // A piece that starts parallel work of its own on this thread gets a pool scope, not this team,
        // whose job slot is taken until the phase ends.
        CURRENT_TEAM.with(|t| t.set(std::ptr::null()));
        self.work_on(job);
        CURRENT_TEAM.with(|t| t.set(self));
        while self.done.load(Ordering::Acquire) < n {
            std::hint::spin_loop();
        }
        *self.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        while self.active.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
        if let Some(panic) = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            resume_unwind(panic);
        }
        outputs.0.into_iter().map(|slot| slot.into_inner().expect("every piece ran")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squares_by_chunk(values: &mut [u64]) -> Vec<u64> {
        par_chunks_mut(values, 7, |first, chunk| {
            for (i, v) in chunk.iter_mut().enumerate() {
                *v = ((first + i) * (first + i)) as u64;
            }
            chunk.iter().sum::<u64>()
        })
    }

    #[test]
    fn a_team_gives_the_results_of_a_pool_scope_in_piece_order() {
        super::super::init_thread_pool(2);
        let mut plain = vec![0u64; 1001];
        let sums = squares_by_chunk(&mut plain);
        let (mut teamed, mut team_sums) = (vec![0u64; 1001], Vec::new());
        let ranges = with_team(true, || {
            for _ in 0..200 {
                team_sums = squares_by_chunk(&mut teamed);
            }
            par_map_ranges(10, 3, |r| r)
        });
        assert_eq!(plain, teamed);
        assert_eq!(sums, team_sums);
        assert_eq!(sums.len(), 7);
        assert_eq!(ranges, vec![0..4, 4..8, 8..10]);
        let total: u64 = (0..1001u64).map(|i| i * i).sum();
        assert_eq!(sums.iter().sum::<u64>(), total);
    }

    #[test]
    fn pieces_may_split_their_own_work_inside_a_team() {
        super::super::init_thread_pool(2);
        let sums = with_team(true, || {
            par_map_ranges(40, 4, |r| par_map_ranges(r.len(), 3, |inner| inner.len()).iter().sum::<usize>())
        });
        assert_eq!(sums, vec![10, 10, 10, 10]);
    }

    #[test]
    fn a_panicking_piece_reaches_the_caller_and_the_team_ends() {
        super::super::init_thread_pool(2);
        let caught = catch_unwind(|| {
            with_team(true, || {
                par_map_ranges(8, 8, |r| {
                    assert!(r.start != 5, "piece five fails");
                    r.start
                })
            })
        });
        assert!(caught.is_err());
        // The thread leads no team any more: a new one works.
        assert_eq!(with_team(true, || par_map_ranges(4, 2, |r| r.len())), vec![2, 2]);
    }
}
