#!/usr/bin/env python3
"""AC power-flow speed: Machi against pandapower and lightsim2grid, same cases, same machine, one run.

For every case, each tool solves the balanced AC power flow with Newton–Raphson from a flat start to
1e-8 MVA, many times, and the median solve time is reported (N below is the number of solves in one round):

* Machi: `machi powerflow FILE --json --repeat N` — the network read and prepared once (admittance matrix,
  Jacobian pattern, ordering), then N solves from a flat start; each solve is the whole Newton–Raphson with
  the branch flows and losses of the result. `solve_seconds` is the median.
* lightsim2grid (its C++ Newton–Raphson with KLU, `AlgorithmType.NR_KLU`): the model built once with
  `init_from_pandapower`, then N calls of `GridModel.ac_pf(V0, 10, 1e-8)` from the same flat start, timed
  around the call from Python (its own timer `timer_last_ac_pf` is recorded too). Its flat start puts
  every angle at the slack's: on feeders behind phase-shifting transformers (the LV feeder) it needs more
  iterations than Machi, whose flat start carries the shifts.
* pandapower (`runpp`, numba): wall time of `runpp`, and pandapower's own timer `net._ppc["et"]` around
  its Newton–Raphson (Ybus, the iterations and the branch flows, without the conversion of the tables).

The machine is shared and its speed drifts by tens of percent from minute to minute, so each case is measured
in `--rounds` rounds (default 5), each timing pandapower, Machi and lightsim2grid one after the other; a round
has 1/rounds of the case's solves for Machi and lightsim2grid and a twentieth of that (at least 2) for
pandapower, whose solves are slow. A slow spell then falls on all three tools alike rather than on one. Each
tool's figure is the median of its per-round medians; the ratios printed are those figures' ratios, and the
per-round ratios pandapower NR / Machi (in time order) are printed and written too, to show the spread.

MATPOWER cases are read by Machi from the `.m` files and by pandapower and lightsim2grid from pandapower's
own copy of the case (`pandapower.networks`; same buses and branches, slightly different data for case300
and case9241pegase, see `data/grid/reference/README.md`: the work per solve is the same). lightsim2grid's
answer is compared with pandapower's and the difference printed: lightsim2grid's own converter applies
transformer taps that pandapower ignores (no `tap_changer_type`) in case118, which moves three buses by up
to 0.014 pu and costs it one more iteration there. Machi's accuracy is the business of
`engine/tests/powerflow_cases.rs`.

    pip install pandapower lightsim2grid matpowercaseframes numba
    cargo build --release -p machi
    python3 benches/peers/powerflow_speed.py [--cases case118 ...] [--rounds R] [--json OUT]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandapower as pp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pandapower_reference import load_matpower  # noqa: E402  (from_mpc, with case14's baseKV = 0 handled)

ROOT = Path(__file__).resolve().parents[2]
MACHI = ROOT / "target" / "release" / "machi"
# name -> (file, f_hz for MATPOWER cases); f_hz only turns charging B into a capacitance and back.
CASES = {
    "case9": ("data/grid/matpower/case9.m", 60),
    "case14": ("data/grid/matpower/case14.m", 60),
    "case30": ("data/grid/matpower/case30.m", 60),
    "case118": ("data/grid/matpower/case118.m", 60),
    "case300": ("data/grid/matpower/case300.m", 60),
    "case1354pegase": ("data/grid/matpower/case1354pegase.m", 50),
    "case2869pegase": ("data/grid/matpower/case2869pegase.m", 50),
    "case9241pegase": ("data/grid/matpower/case9241pegase.m", 50),
    "ieee-european-lv": ("data/grid/ieee-european-lv.pandapower.json", None),
}
TOL_MVA = 1e-8


def repeats(buses):
    return 2000 if buses < 200 else 300 if buses < 2000 else 60 if buses < 5000 else 20


def load(name):
    """The pandapower network of a case: pandapower's own copy of a MATPOWER case where it ships one
    (`pandapower.networks.caseN()`, which lightsim2grid accepts; `from_mpc` of the newer `.m` files makes
    `impedance` elements that lightsim2grid refuses), else the `.m` file through `from_mpc`."""
    import pandapower.networks as pn
    rel, f_hz = CASES[name]
    path = ROOT / rel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix == ".m":
            return getattr(pn, name)() if hasattr(pn, name) else load_matpower(path, f_hz)[0]
        net = pp.from_json(str(path))
    # Asymmetric loads as balanced loads of the same total, as Machi's balanced model takes them
    # (lightsim2grid refuses asymmetric_load).
    for _, a in net.asymmetric_load.iterrows():
        pp.create_load(net, a.bus, p_mw=a.p_a_mw + a.p_b_mw + a.p_c_mw, q_mvar=a.q_a_mvar + a.q_b_mvar + a.q_c_mvar,
                       scaling=a.scaling, in_service=a.in_service)
    net.asymmetric_load.drop(net.asymmetric_load.index, inplace=True)
    return net


def machi(name, n):
    out = subprocess.run([str(MACHI), "powerflow", str(ROOT / CASES[name][0]), "--json", "--repeat", str(n),
                          "--tolerance-mva", str(TOL_MVA)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout)
    return r


def pandapower_times(net, n):
    kw = dict(algorithm="nr", init="flat", calculate_voltage_angles=True, tolerance_mva=TOL_MVA,
              max_iteration=10, lightsim2grid=False, numba=True)
    pp.runpp(net, **kw)  # warm-up (numba compilation)
    wall, et = [], []
    for _ in range(n):
        t = time.perf_counter()
        pp.runpp(net, **kw)
        wall.append(time.perf_counter() - t)
        et.append(net._ppc["et"])
    return statistics.median(wall), statistics.median(et), int(net._ppc["iterations"])


def lightsim_times(net, n):
    from lightsim2grid.network import init_from_pandapower
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = init_from_pandapower(net)
    # Flat start: 1 pu at 0°, set points at generator and external-grid buses.
    v0 = np.ones(len(net.bus), dtype=complex)
    position = {b: k for k, b in enumerate(net.bus.index)}
    for table in ("gen", "ext_grid"):
        t = getattr(net, table)
        for bus, vm, on in zip(t.bus, t.vm_pu, t.in_service):
            if on:
                v0[position[bus]] = vm
    for bus, va, on in zip(net.ext_grid.bus, net.ext_grid.va_degree, net.ext_grid.in_service):
        if on:
            v0[position[bus]] *= np.exp(1j * np.deg2rad(va))
    # Its tolerance is in per unit; where it cannot reach Machi's (1e-8 MVA = 1e-10 pu on 100 MVA) in
    # f64 round-off, it gets 1e-8 pu, a looser test than Machi's, and the tolerance used is recorded.
    tol = TOL_MVA / net.sn_mva
    v = model.ac_pf(v0.copy(), 10, tol)
    if len(v) == 0:
        tol = 1e-8
        v = model.ac_pf(v0.copy(), 10, tol)
    if len(v) == 0:
        return None
    ref = net.res_bus.vm_pu.values
    dvm = float(np.nanmax(np.abs(np.abs(v) - ref)))
    wall, internal = [], []
    for _ in range(n):
        x = v0.copy()
        t = time.perf_counter()
        model.ac_pf(x, 10, tol)
        wall.append(time.perf_counter() - t)
        internal.append(model.timer_last_ac_pf)
    return statistics.median(wall), statistics.median(internal), int(model.get_solver().get_nb_iter()), dvm, tol


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (see above)")
    args = ap.parse_args()
    if args.rounds < 1:
        sys.exit(f"--rounds must be at least 1, not {args.rounds}")
    load_before = os.getloadavg()[0]
    if not MACHI.exists():
        sys.exit(f"{MACHI} is missing: run `cargo build --release -p machi` first")
    rows = []
    print(f"{'case':18} {'buses':>6} | {'Machi':>10} {'it':>2} | {'lightsim2grid':>13} {'(own)':>10} {'it':>2} | "
          f"{'pandapower NR':>13} {'runpp':>9} | {'ls2g/Machi':>10} {'pp NR/Machi':>11}")
    for name in args.cases:
        net = load(name)
        n = repeats(len(net.bus))
        per_round = max(1, n // args.rounds)
        pp_per_round = max(2, per_round // 20)
        pp_rounds, machi_rounds, ls_rounds = [], [], []
        for _ in range(args.rounds):
            pp_rounds.append(pandapower_times(net, pp_per_round))
            machi_rounds.append(machi(name, per_round))
            ls_rounds.append(lightsim_times(net, per_round))
        pp_wall = statistics.median(r[0] for r in pp_rounds)
        pp_et = statistics.median(r[1] for r in pp_rounds)
        pp_it = pp_rounds[-1][2]
        m = machi_rounds[-1]
        m["solve_seconds"] = statistics.median(r["solve_seconds"] for r in machi_rounds)
        round_ratios = [p[1] / r["solve_seconds"] for p, r in zip(pp_rounds, machi_rounds)]
        ref = {int(i): vm for i, vm in zip(net.bus.index, net.res_bus.vm_pu.values)}
        # Machi's buses carry MATPOWER numbers (pandapower's from_mpc numbers from 0) or pandapower indices.
        offset = 1 if CASES[name][0].endswith(".m") else 0
        dvm_machi = max(abs(b["vm_pu"] - ref[b["id"] - offset]) for b in m["buses"]
                        if b["vm_pu"] is not None and np.isfinite(ref.get(b["id"] - offset, np.nan)))
        ls = None
        if any(r is None for r in ls_rounds):
            print(f"  note: lightsim2grid did not converge in {sum(r is None for r in ls_rounds)} of "
                  f"{args.rounds} rounds; its figures are left out", flush=True)
        else:
            ls = (statistics.median(r[0] for r in ls_rounds), statistics.median(r[1] for r in ls_rounds)) + ls_rounds[-1][2:]
        row = {"case": name, "buses": len(net.bus), "rounds": args.rounds,
               "solves": per_round * args.rounds, "pandapower_solves": pp_per_round * args.rounds,
               "pandapower_nr_over_machi_per_round": round_ratios,
               "machi_solve_median_s": m["solve_seconds"], "machi_iterations": m["iterations"],
               "machi_max_dvm_vs_pandapower": dvm_machi,
               "pandapower_nr_median_s": pp_et, "pandapower_runpp_median_s": pp_wall, "pandapower_iterations": pp_it}
        if ls:
            row.update({"lightsim2grid_median_s": ls[0], "lightsim2grid_own_timer_median_s": ls[1],
                        "lightsim2grid_iterations": ls[2], "lightsim2grid_max_dvm_vs_pandapower": ls[3],
                        "lightsim2grid_tolerance_pu": ls[4]})
        rows.append(row)
        ms = m["solve_seconds"]
        ls_txt = f"{ls[0] * 1e3:10.3f} ms {ls[1] * 1e3:7.3f} ms {ls[2]:2d}" if ls else f"{'—':>13} {'':>10} {'':>2}"
        ratio = f"{ls[0] / ms:10.2f}" if ls else f"{'—':>10}"
        print(f"{name:18} {len(net.bus):6d} | {ms * 1e3:7.3f} ms {m['iterations']:2d} | {ls_txt} | "
              f"{pp_et * 1e3:10.3f} ms {pp_wall * 1e3:6.1f} ms | {ratio} {pp_et / ms:11.1f}", flush=True)
        print(f"{'':18} per-round pp NR/Machi: {min(round_ratios):.1f} … {max(round_ratios):.1f}", flush=True)
        if ls and ls[3] > 1e-6:
            print(f"  note: lightsim2grid's model differs from pandapower's by up to {ls[3]:.2e} pu", flush=True)
    doc = {"what": __doc__.split("\n\n")[0], "tolerance_mva": TOL_MVA, "cpu": os.cpu_count(),
           "load_average_before": load_before, "cases": rows}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
