//! The team: worker threads for the domains' fork–join phases, the ones that run many times a second of
//! simulated time (the microscopic traffic model's three parallel phases each step, say).
//!
//! An async task pool wakes a sleeping worker for every phase, and a wake-up costs tens of microseconds (more
//! in a virtual machine, where it is an inter-processor interrupt through the hypervisor) — as much as a
//! phase's whole work on a few thousand vehicles. So here each idle worker *spins* for a short while
//! ([`SPIN_BEFORE_SLEEP`]) before it sleeps: through the sequential stretches between one phase and the next
//! it is awake and starts at once. The calling thread works too: a team for `n` threads has `n − 1`
//! workers. Phases are split into more pieces than threads; each thread first takes its own share of them
//! (the same share every phase, so the lanes or cells it works on stay in its core's caches), then any the
//! others have not started, so a thread that starts late takes fewer. Results are put back in piece
//! order, so nothing depends on which thread ran what.
//!
//! One job runs at a time; a second caller while the team is busy (a nested phase, or two domains at
//! once) runs its pieces on its own thread, which gives the same results.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins for the next job before it sleeps: 200 µs, a few times the sequential
/// stretch between two parallel phases of a traffic step (measured here: some 45 µs), and short enough that
/// an idle team costs nothing to speak of.
pub const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(200);

/// Spins between two looks at the clock while a worker waits for work.
const SPINS_PER_CLOCK_READ: u32 = 64;
/// Spins between two yields of the processor while the caller waits for the workers to finish.
const SPINS_PER_YIELD: u32 = 64;

/// A job: called once on every thread of the team with the thread's index (0 is the caller).
type Job<'a> = dyn Fn(usize) + Sync + 'a;

struct Shared {
    /// The current job; set by the caller before it publishes a new epoch, read by workers after they see
    /// it, and valid until every worker has finished (`pending` is 0).
    job: UnsafeCell<Option<*const Job<'static>>>,
    /// Jobs published so far.
    epoch: AtomicU64,
    /// Workers that have not finished the current job.
    pending: AtomicUsize,
    /// A worker's part of the current job panicked.
    panicked: AtomicBool,
    /// Each worker's "about to sleep or sleeping" flag.
    sleeping: Vec<AtomicBool>,
    stop: AtomicBool,
}

// SAFETY: `job` is written only by the caller that holds the team's lock, while no worker reads it (before
// the epoch that publishes it, and after every worker has finished); the pointee is `Sync`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// Worker threads and the calling thread, for fork–join phases.
pub struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    /// Held while a job runs.
    busy: Mutex<()>,
}

impl Team {
    /// A team for `threads` threads in all: `threads − 1` workers and the caller.
    pub fn new(threads: usize) -> Team {
        let workers = threads.max(1) - 1;
        let shared = Arc::new(Shared {
            job: UnsafeCell::new(None),
            epoch: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleeping: (0..workers).map(|_| AtomicBool::new(false)).collect(),
            stop: AtomicBool::new(false),
        });
        let workers = (0..workers)
            .map(|k| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("machi-team ({k})"))
                    .spawn(move || work(&shared, k))
                    .expect("a team thread starts")
            })
            .collect();
        Team { shared, workers, busy: Mutex::new(()) }
    }

    /// Threads of the team, the caller's included.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `job(index)` once on every thread of the team (index 0 on the calling thread) and returns when
    /// all have finished; a panic in any is raised here. If the team is busy, runs every index on the
    /// calling thread, one after the other.
    pub fn run(&self, job: &Job<'_>) {
        let guard = match self.busy.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                (0..self.threads()).for_each(job);
                return;
            }
        };
        if self.workers.is_empty() {
            job(0);
            return;
        }
        let s = &*self.shared;
        // SAFETY: the lifetime is erased only while the workers run the job: this function does not return
        // (nor unwind) before `pending` is back to 0, and the pointer is cleared then.
        let erased: *const Job<'static> = unsafe { std::mem::transmute(job as *const Job<'_>) };
        // SAFETY: no worker reads `job` now (the previous job finished; this epoch is not published yet).
        unsafe { *s.job.get() = Some(erased) };
        s.panicked.store(false, Ordering::Relaxed);
        s.pending.store(self.workers.len(), Ordering::Relaxed);
        s.epoch.fetch_add(1, Ordering::SeqCst);
        for (k, w) in self.workers.iter().enumerate() {
            if s.sleeping[k].load(Ordering::SeqCst) {
                w.thread().unpark();
            }
        }
        let mine = catch_unwind(AssertUnwindSafe(|| job(0)));
        let mut spins = 0u32;
        while s.pending.load(Ordering::Acquire) != 0 {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(SPINS_PER_YIELD) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: every worker has finished with the job.
        unsafe { *s.job.get() = None };
        drop(guard);
        if let Err(payload) = mine {
            resume_unwind(payload);
        }
        if s.panicked.load(Ordering::Acquire) {
            panic!("a team thread panicked");
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for w in &self.workers {
            w.thread().unpark();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A worker: waits for each new epoch (spinning, then sleeping), runs its part of the job, reports done.
fn work(s: &Shared, k: usize) {
    let mut seen = 0u64;
    loop {
        let mut idle_since = Instant::now();
        let mut spins = 0u32;
        loop {
            if s.stop.load(Ordering::Relaxed) {
                return;
            }
            let epoch = s.epoch.load(Ordering::Acquire);
            if epoch != seen {
                seen = epoch;
                break;
            }
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(SPINS_PER_CLOCK_READ) && idle_since.elapsed() > SPIN_BEFORE_SLEEP {
                s.sleeping[k].store(true, Ordering::SeqCst);
                if s.epoch.load(Ordering::SeqCst) == seen && !s.stop.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                s.sleeping[k].store(false, Ordering::SeqCst);
                idle_since = Instant::now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: the epoch was published after the job was set, and the caller keeps it alive until
        // `pending` reaches 0, which this worker's decrement below is part of.
        let job = unsafe { (*s.job.get()).expect("a published job") };
        if catch_unwind(AssertUnwindSafe(|| unsafe { (*job)(k + 1) })).is_err() {
            s.panicked.store(true, Ordering::Release);
        }
        s.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

static TEAM: OnceLock<Team> = OnceLock::new();

/// The process's team, made for `threads` threads on first use (later calls get the same team).
pub fn team(threads: usize) -> &'static Team {
    TEAM.get_or_init(|| Team::new(threads))
}

/// A piece of a slice: the index of its first item, and its items.
type Piece<'a, T> = (usize, &'a mut [T]);

/// Runs `work(first index, piece)` over `pieces` contiguous pieces of `items` on the team (inline when
/// `pieces` ≤ 1); the results in piece order.
pub fn run_pieces<T: Send, R: Send>(
    team: &Team,
    items: &mut [T],
    pieces: usize,
    work: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    if pieces <= 1 || items.len() <= 1 {
        return vec![work(0, items)];
    }
    let per = items.len().div_ceil(pieces);
    let slots: Vec<Mutex<Option<Piece<'_, T>>>> =
        items.chunks_mut(per).enumerate().map(|(k, c)| Mutex::new(Some((k * per, c)))).collect();
    let results: Vec<Mutex<Option<R>>> = slots.iter().map(|_| Mutex::new(None)).collect();
    let taken: Vec<AtomicBool> = slots.iter().map(|_| AtomicBool::new(false)).collect();
    let (n, threads) = (slots.len(), team.threads());
    team.run(&|who| {
        // Home pieces first (thread t's share of the pieces, the same every phase, so the data each
        // thread works on stays in its core's caches), then whatever the others have not started.
        let home = who * n / threads;
        for k in (home..n).chain(0..home) {
            if taken[k].swap(true, Ordering::Relaxed) {
                continue;
            }
            let (first, piece) = slots[k].lock().expect("unpoisoned").take().expect("each piece is claimed once");
            let r = work(first, piece);
            *results[k].lock().expect("unpoisoned") = Some(r);
        }
    });
    results.into_iter().map(|r| r.into_inner().expect("unpoisoned").expect("every piece ran")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_run_once_each_and_come_back_in_order() {
        let team = Team::new(3);
        for pieces in [1, 2, 3, 7, 50] {
            let mut items: Vec<u64> = (0..1000).collect();
            let sums = run_pieces(&team, &mut items, pieces, |first, piece| {
                for x in piece.iter_mut() {
                    *x *= 2;
                }
                (first, piece.iter().sum::<u64>())
            });
            assert_eq!(items, (0..1000).map(|x| x * 2).collect::<Vec<_>>());
            assert_eq!(sums.iter().map(|s| s.1).sum::<u64>(), 999 * 1000);
            assert!(sums.windows(2).all(|w| w[0].0 < w[1].0), "in piece order");
        }
        // After the workers have gone to sleep, a job still wakes them.
        std::thread::sleep(SPIN_BEFORE_SLEEP * 5);
        let count = AtomicUsize::new(0);
        team.run(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_nested_job_runs_on_the_calling_thread_and_a_panic_reaches_the_caller() {
        let team = Team::new(2);
        let inner = AtomicUsize::new(0);
        team.run(&|_| {
            team.run(&|_| {
                inner.fetch_add(1, Ordering::Relaxed);
            });
        });
        assert_eq!(inner.load(Ordering::Relaxed), 4, "two outer parts, each running both inner parts");
        let caught = catch_unwind(AssertUnwindSafe(|| {
            team.run(&|k| assert_ne!(k, 1, "worker part fails"));
        }));
        assert!(caught.is_err());
        // The team still works.
        let count = AtomicUsize::new(0);
        team.run(&|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}
