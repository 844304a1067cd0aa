#!/usr/bin/env python3
"""Side-by-side 1D dam break: Machi's flood solver against ANUGA, both checked against analytic solutions.

The problem: a frictionless, horizontal channel of length L (default 2000 m) with closed (reflective)
ends and a dam at x = 0 in its middle. Upstream depth h0 = 10 m; downstream depth h1 = 0 (dry bed,
analytic solution of Ritter 1892), 2 m or 5 m (wet bed, analytic solution of Stoker 1957). Both models
run to t = 40 s, when every wave is still well inside the channel, at dx = 5 m and dx = 2.5 m.

* Machi: the already-built example binary ``target/release/examples/dam_break H0 H1 LENGTH_M DX_M T_S``
  (a 1-cell-wide channel of nx = L/dx square cells, one solver thread). It prints one JSON line; we
  time the whole process from here and also report its own solve time (``wall_s``).
* ANUGA (Roberts, Nielsen et al., Geoscience Australia; PyPI package ``anuga``): a rectangular-cross
  mesh of nx x ny squares of side dx, each cut into 4 triangles, ny (default 1) squares across a
  narrow channel with reflective walls on all four sides, friction 0, ANUGA's default flow algorithm
  (DE0 in ANUGA 4.x), run in a single process (no MPI) with one OpenMP thread. Timed: domain creation
  and the evolve loop, separately. No .sww output is written.
* Depth extraction for ANUGA: the area-weighted mean of the triangle centroid depths (stage minus
  elevation) in each x band [i*dx, (i+1)*dx) - L/2, i.e. the finite-volume cell average of the column
  of squares that spans cell i, comparable with Machi's cell-centred depth. ``--extract centreline``
  instead samples ANUGA's reconstructed stage at the points (x_i, 0) with
  ``Quantity.get_values(interpolation_points=...)``.
* Error: relative L1 = sum_i |h_i - h_exact(x_i)| / sum_i h_exact(x_i) over the cell centres
  x_i = (i + 0.5) dx - L/2, with h_exact from this script's own Ritter / Stoker implementation (Stoker's
  intermediate state from the shock relations by bisection). Machi's self-reported L1 (from its own
  Rust implementation of the same solutions) is cross-checked against ours.

Wall times are medians over --reps repetitions (default 3). ``--quick``: dx = 5 m only, 1 repetition.

References:
  A. Ritter (1892), Die Fortpflanzung der Wasserwellen, Zeitschrift des Vereines Deutscher
    Ingenieure 36(33), 947-954.
  J. J. Stoker (1957), Water Waves: The Mathematical Theory with Applications, Interscience, New York.
  S. Roberts, O. Nielsen, D. Gray, J. Sexton, G. Davies et al., ANUGA: a hydrodynamic model for
    tsunami and flood modelling, Australian National University and Geoscience Australia,
    https://github.com/anuga-community/anuga_core

Usage:
  python3 benches/peers/anuga_dam_break.py [--quick] [--json OUT] [--machi PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

G = 9.81  # m/s², the value Machi's solver uses
WORKSPACE = Path(__file__).resolve().parents[2]
DEFAULT_MACHI = WORKSPACE / "target" / "release" / "examples" / "dam_break"


# --------------------------------------------------------------------------------------------------
# Analytic solutions (horizontal frictionless bed, dam at x = 0, released at t = 0).
# --------------------------------------------------------------------------------------------------

def ritter_depth(x: np.ndarray, t: float, h0: float, g: float = G) -> np.ndarray:
    """Ritter (1892): dry bed downstream. Rarefaction fan -c0 t < x < 2 c0 t with h = (2 c0 - x/t)^2 / (9 g)."""
    x = np.asarray(x, dtype=float)
    c0 = np.sqrt(g * h0)
    fan = (2.0 * c0 - x / t) ** 2 / (9.0 * g)
    return np.where(x <= -c0 * t, h0, np.where(x >= 2.0 * c0 * t, 0.0, fan))


def stoker_state(h0: float, h1: float, g: float = G) -> tuple[float, float, float]:
    """Stoker (1957) intermediate state (hm, um) and bore speed s for a wet bed of depth h1 < h0.

    Across the rarefaction (Riemann invariant from the still upstream water): um = 2 (c0 - cm).
    Across the bore moving at s into still water of depth h1 (mass and momentum jump conditions):
        s (hm - h1) = hm um,    s hm um = hm um^2 + g (hm^2 - h1^2) / 2,
    which give um = (hm - h1) sqrt(g (hm + h1) / (2 hm h1)). Equate the two um and solve for hm in
    (h1, h0) by bisection (the difference is decreasing in hm and changes sign on that interval).
    """
    if not 0.0 < h1 < h0:
        raise ValueError("Stoker needs 0 < h1 < h0")
    c0 = np.sqrt(g * h0)

    def mismatch(hm: float) -> float:
        u_rarefaction = 2.0 * (c0 - np.sqrt(g * hm))
        u_bore = (hm - h1) * np.sqrt(g * (hm + h1) / (2.0 * hm * h1))
        return u_rarefaction - u_bore

    lo, hi = h1, h0
    assert mismatch(lo) > 0.0 > mismatch(hi)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mismatch(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    hm = 0.5 * (lo + hi)
    um = 2.0 * (c0 - np.sqrt(g * hm))
    s = hm * um / (hm - h1)
    return float(hm), float(um), float(s)


def stoker_depth(x: np.ndarray, t: float, h0: float, h1: float, g: float = G) -> np.ndarray:
    """Stoker (1957): wet bed downstream. h0 | fan | hm | bore at s t | h1."""
    x = np.asarray(x, dtype=float)
    hm, um, s = stoker_state(h0, h1, g)
    c0, cm = np.sqrt(g * h0), np.sqrt(g * hm)
    fan = (2.0 * c0 - x / t) ** 2 / (9.0 * g)
    return np.select(
        [x <= -c0 * t, x <= (um - cm) * t, x <= s * t],
        [h0, fan, hm],
        default=h1,
    )


def exact_depth(x: np.ndarray, t: float, h0: float, h1: float) -> np.ndarray:
    return ritter_depth(x, t, h0) if h1 == 0.0 else stoker_depth(x, t, h0, h1)


def wave_extent(t: float, h0: float, h1: float) -> tuple[float, float]:
    """Leftmost and rightmost positions reached by any wave at time t."""
    c0 = np.sqrt(G * h0)
    right = 2.0 * c0 * t if h1 == 0.0 else stoker_state(h0, h1)[2] * t
    return -c0 * t, right


def check_analytic(h0: float, h1: float, length: float, t: float) -> float:
    """Sanity checks; returns the relative volume error of the analytic profile on a fine grid."""
    left, right = wave_extent(t, h0, h1)
    if left <= -length / 2 or right >= length / 2:
        sys.exit(f"waves leave the channel by t = {t} s (extent {left:.0f}..{right:.0f} m): lengthen it")
    n = 2_000_000
    xf = (np.arange(n) + 0.5) * (length / n) - length / 2
    volume = exact_depth(xf, t, h0, h1).sum() * (length / n)
    initial = (h0 + h1) * length / 2
    rel = abs(volume - initial) / initial
    assert rel < 1e-5, f"analytic volume not conserved: {rel:.2e}"
    if h1 > 0.0:
        # Stoker tends to Ritter as h1 -> 0 (away from the front).
        xs = np.linspace(-300.0, 300.0, 61)
        assert np.max(np.abs(stoker_depth(xs, t, h0, 1e-9) - ritter_depth(xs, t, h0))) < 1e-2
    # Depth at the dam in the fan is 4/9 h0 whenever the fan straddles x = 0.
    if h1 == 0.0 or stoker_state(h0, h1)[1] > np.sqrt(G * stoker_state(h0, h1)[0]):
        assert abs(float(exact_depth(np.array([0.0]), t, h0, h1)[0]) - 4.0 / 9.0 * h0) < 1e-9
    return rel


def rel_l1(h: np.ndarray, exact: np.ndarray) -> float:
    return float(np.abs(h - exact).sum() / exact.sum())


def cell_centres(length: float, dx: float) -> np.ndarray:
    nx = int(round(length / dx))
    return (np.arange(nx) + 0.5) * dx - length / 2


# --------------------------------------------------------------------------------------------------
# Machi
# --------------------------------------------------------------------------------------------------

def run_machi(binary: Path, h0: float, h1: float, length: float, dx: float, t: float, reps: int) -> dict:
    cmd = [str(binary), *(f"{v:g}" for v in (h0, h1, length, dx, t))]
    process_s, internal_s, out = [], [], None
    for _ in range(reps):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        process_s.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        internal_s.append(float(out["wall_s"]))
    x = np.asarray(out["x"], dtype=float)
    depth = np.asarray(out["depth"], dtype=float)
    if not np.allclose(x, cell_centres(length, dx), atol=1e-5):
        sys.exit("Machi's x does not match the cell centres this script expects")
    exact = exact_depth(x, t, h0, h1)
    l1 = rel_l1(depth, exact)
    return {
        "model": "machi",
        "command": cmd,
        "cells": int(out["cells"]),
        "steps": int(out["steps"]),
        "l1": l1,
        "l1_self_reported": float(out["l1"]),
        "solve_s_median": statistics.median(internal_s),
        "process_s_median": statistics.median(process_s),
        "solve_s_all": internal_s,
        "process_s_all": process_s,
        "depth": depth.tolist(),
    }


# --------------------------------------------------------------------------------------------------
# ANUGA
# --------------------------------------------------------------------------------------------------

def import_anuga():
    """Import ANUGA with one OpenMP thread; returns (module, import seconds)."""
    os.environ["OMP_NUM_THREADS"] = "1"  # before the import: ANUGA's C kernels use OpenMP
    start = time.perf_counter()
    try:
        # ANUGA prints a notice that mpi4py is missing (it then runs sequentially): keep stdout for the table.
        with contextlib.redirect_stdout(sys.stderr):
            import anuga  # noqa: PLC0415
    except ImportError:
        sys.exit("ANUGA is not installed: pip install anuga")
    anuga.set_omp_num_threads(1, verbose=False)
    return anuga, time.perf_counter() - start


def build_anuga_domain(anuga, h0: float, h1: float, length: float, dx: float, ny: int):
    nx = int(round(length / dx))
    width = ny * dx
    domain = anuga.rectangular_cross_domain(nx, ny, len1=length, len2=width, origin=(-length / 2, -width / 2))
    domain.set_store(False)  # no .sww file
    centroids = domain.get_centroid_coordinates(absolute=True)
    domain.set_quantity("elevation", 0.0, location="centroids")
    domain.set_quantity("friction", 0.0, location="centroids")
    # The dam line x = 0 is a column boundary, so every triangle lies wholly on one side.
    domain.set_quantity("stage", np.where(centroids[:, 0] < 0.0, h0, h1), location="centroids")
    wall = anuga.Reflective_boundary(domain)
    domain.set_boundary({"left": wall, "right": wall, "bottom": wall, "top": wall})
    return domain


def anuga_depth(domain, length: float, dx: float, extract: str) -> np.ndarray:
    x = cell_centres(length, dx)
    if extract == "centreline":
        points = np.column_stack([x, np.zeros_like(x)])
        stage = domain.get_quantity("stage").get_values(interpolation_points=points)
        elevation = domain.get_quantity("elevation").get_values(interpolation_points=points)
        return np.asarray(stage) - np.asarray(elevation)
    centroids = domain.get_centroid_coordinates(absolute=True)
    h = domain.quantities["stage"].centroid_values - domain.quantities["elevation"].centroid_values
    band = np.clip(np.floor((centroids[:, 0] + length / 2) / dx).astype(int), 0, len(x) - 1)
    area = domain.areas
    return np.bincount(band, weights=h * area, minlength=len(x)) / np.bincount(band, weights=area, minlength=len(x))


def run_anuga(anuga, h0: float, h1: float, length: float, dx: float, t: float, ny: int, reps: int,
              extract: str) -> dict:
    create_s, evolve_s = [], []
    for _ in range(reps):
        start = time.perf_counter()
        domain = build_anuga_domain(anuga, h0, h1, length, dx, ny)
        created = time.perf_counter()
        for _ in domain.evolve(yieldstep=t, finaltime=t):
            pass
        evolve_s.append(time.perf_counter() - created)
        create_s.append(created - start)
    if abs(domain.get_time() - t) > 1e-9:
        sys.exit(f"ANUGA stopped at t = {domain.get_time()}, not {t}")
    x = cell_centres(length, dx)
    depth = anuga_depth(domain, length, dx, extract)
    h = domain.quantities["stage"].centroid_values - domain.quantities["elevation"].centroid_values
    volume = float((h * domain.areas).sum())
    initial = (h0 + h1) / 2 * length * ny * dx
    return {
        "model": "anuga",
        "flow_algorithm": domain.get_flow_algorithm(),
        "timestepping": domain.get_timestepping_method(),
        "cfl": domain.get_cfl(),
        "omp_threads": anuga.get_omp_num_threads(),
        "triangles": len(domain),
        "width_cells": ny,
        "steps": int(domain.number_of_steps),  # counted since the single yield before the loop
        "l1": rel_l1(depth, exact_depth(x, t, h0, h1)),
        "volume_rel_error": abs(volume - initial) / initial,
        "create_s_median": statistics.median(create_s),
        "evolve_s_median": statistics.median(evolve_s),
        "create_s_all": create_s,
        "evolve_s_all": evolve_s,
        "depth": depth.tolist(),
    }


# --------------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machi", type=Path, default=DEFAULT_MACHI,
                        help="Machi's dam_break example binary (default: %(default)s)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every result, profiles included, here")
    parser.add_argument("--quick", action="store_true", help="dx = 5 m only, 1 repetition")
    parser.add_argument("--reps", type=int, default=3, help="repetitions for wall-time medians (default 3)")
    parser.add_argument("--dx", type=float, nargs="+", default=[5.0, 2.5], help="cell sizes, m")
    parser.add_argument("--h1", type=float, nargs="+", default=[0.0, 2.0, 5.0], help="downstream depths, m")
    parser.add_argument("--h0", type=float, default=10.0, help="upstream depth, m (default 10)")
    parser.add_argument("--length", type=float, default=2000.0, help="channel length, m (default 2000)")
    parser.add_argument("--t", type=float, default=40.0, help="comparison time, s (default 40)")
    parser.add_argument("--width-cells", type=int, default=1,
                        help="ANUGA channel width in squares of side dx, each 4 triangles (default 1)")
    parser.add_argument("--extract", choices=["band", "centreline"], default="band",
                        help="ANUGA depth: area-weighted centroid mean per x band (default) or "
                             "interpolated at (x_i, 0)")
    args = parser.parse_args()
    if args.quick:
        args.dx, args.reps = [5.0], 1

    machi = args.machi if args.machi.is_absolute() else (Path.cwd() / args.machi)
    if not machi.is_file():
        print(f"Machi's dam_break binary not found at {machi}.\n"
              "Build it first: cargo build --release -p machi-benches --example dam_break", file=sys.stderr)
        return 1

    anuga, import_s = import_anuga()
    version = getattr(anuga, "__version__", "unknown")
    print(f"ANUGA {version} (import {import_s:.2f} s), single process, no MPI, 1 OpenMP thread; "
          f"Machi {machi}", file=sys.stderr)

    results = []
    for dx in args.dx:
        for h1 in args.h1:
            case = f"{'Ritter dry' if h1 == 0.0 else 'Stoker wet'} h1={h1:g}"
            vol_err = check_analytic(args.h0, h1, args.length, args.t)
            m = run_machi(machi, args.h0, h1, args.length, dx, args.t, args.reps)
            if abs(m["l1"] - m["l1_self_reported"]) > 2e-4:
                print(f"warning: {case} dx={dx:g}: Machi's own L1 {m['l1_self_reported']:.6f} vs ours "
                      f"{m['l1']:.6f}", file=sys.stderr)
            a = run_anuga(anuga, args.h0, h1, args.length, dx, args.t, args.width_cells, args.reps, args.extract)
            results.append({
                "case": case, "h0": args.h0, "h1": h1, "length_m": args.length, "dx_m": dx, "t_s": args.t,
                "analytic_volume_rel_error": vol_err, "x": cell_centres(args.length, dx).tolist(),
                "exact": exact_depth(cell_centres(args.length, dx), args.t, args.h0, h1).tolist(),
                "machi": m, "anuga": a,
            })
            print(f"  done {case} dx={dx:g}", file=sys.stderr)

    if args.json:
        meta = {
            "anuga_version": version, "anuga_import_s": import_s, "machi_binary": str(machi),
            "reps": args.reps, "extract": args.extract, "width_cells": args.width_cells,
            "python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        }
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    header = ("case", "dx m", "Machi L1", "ANUGA L1", "Machi solve s", "Machi proc s", "ANUGA evolve s",
              "ANUGA create s", "evolve/solve", "evolve/proc", "Machi steps", "ANUGA steps")
    rows = []
    for r in results:
        m, a = r["machi"], r["anuga"]
        rows.append((r["case"], f"{r['dx_m']:g}", f"{m['l1']:.4f}", f"{a['l1']:.4f}",
                     f"{m['solve_s_median']:.4f}", f"{m['process_s_median']:.4f}",
                     f"{a['evolve_s_median']:.3f}", f"{a['create_s_median']:.3f}",
                     f"{a['evolve_s_median'] / m['solve_s_median']:.0f}",
                     f"{a['evolve_s_median'] / m['process_s_median']:.1f}",
                     str(m["steps"]), str(a["steps"])))
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    a0 = results[0]["anuga"]
    print(f"\nANUGA {version}: flow algorithm {a0['flow_algorithm']}, {a0['timestepping']} timestepping, "
          f"CFL {a0['cfl']}, {a0['omp_threads']} OpenMP thread, no MPI; {args.width_cells} square(s) "
          f"= {4 * args.width_cells} triangles per dx across; depth by {args.extract}. "
          f"Wall times: medians of {args.reps}.")

    return 0


if __name__ == "__main__":
    sys.exit(main())
