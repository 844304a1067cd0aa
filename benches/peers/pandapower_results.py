#!/usr/bin/env python3
"""Reference AC power-flow results from pandapower (Thurner et al. 2018, IEEE Trans. Power Systems 33(6)) for
Machi's power-flow tests: runs `pandapower.runpp` on a network and writes bus voltages, branch flows and losses
as JSON, which `engine/tests/powerflow_reference.rs` compares with `machi::grid` bus by bus.

    python3 benches/peers/pandapower_results.py data/grid/ieee-european-lv.pandapower.json \
        engine/tests/data/ieee-european-lv.pandapower-results.json
    python3 benches/peers/pandapower_results.py data/grid/ieee-european-lv.pandapower.json \
        engine/tests/data/ieee-european-lv-x300.pandapower-results.json --scale 300

Options of runpp: Newton-Raphson, flat start, voltage angles calculated (transformer phase shifts applied),
tolerance 1e-10 MVA, the T model for transformers (pandapower's defaults otherwise).
"""

import argparse
import json
import sys

import pandapower as pp


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("network", help="pandapower JSON network")
    ap.add_argument("out", help="results JSON to write")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every load's and sgen's scaling (a heavier case)")
    args = ap.parse_args()
    net = pp.from_json(args.network)
    for table in ("load", "asymmetric_load", "sgen", "asymmetric_sgen"):
        if len(net[table]):
            net[table]["scaling"] = net[table]["scaling"] * args.scale
    options = dict(algorithm="nr", init="flat", calculate_voltage_angles=True, tolerance_mva=1e-10, trafo_model="t")
    pp.runpp(net, numba=False, **options)
    r = lambda v: float(f"{float(v):.12g}")
    out = {
        "pandapower": pp.__version__,
        "network": args.network,
        "scale": args.scale,
        "runpp": options,
        "bus": {str(i): {"vm_pu": r(row.vm_pu), "va_degree": r(row.va_degree)} for i, row in net.res_bus.iterrows()},
        "line": {
            str(i): {"p_from_mw": r(row.p_from_mw), "q_from_mvar": r(row.q_from_mvar), "i_ka": r(row.i_ka),
                     "loading_percent": r(row.loading_percent)}
            for i, row in net.res_line.iterrows()
        },
        "trafo": {
            str(i): {"p_hv_mw": r(row.p_hv_mw), "q_hv_mvar": r(row.q_hv_mvar), "loading_percent": r(row.loading_percent)}
            for i, row in net.res_trafo.iterrows()
        },
        "losses_mw": r(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()),
        "ext_grid_p_mw": r(net.res_ext_grid.p_mw.sum()),
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
