#!/usr/bin/env python3
"""Machi's microscopic traffic model side by side with SUMO on the same network and demand, one run.

The case the mobility issue names: SUMO's `netgenerate` grid of 10×10 junctions, 200 m blocks, 2 lanes per
direction, every junction signalised (netconvert's default static programs: 90 s cycles, 42 s green and
3 s yellow per axis); one hour of demand from `randomTrips.py` (one trip per second, seed 42) routed by
`duarouter`; every vehicle of one vType with SUMO's IDM (`carFollowModel="IDM"`, accel 2.6 m/s², decel
4.5 m/s², tau 1 s, minGap 2.5 m, length 5 m, no driver imperfection `sigma="0"` and no speed deviation) —
the parameters of Machi's passenger car.

`--generate` (re)makes `data/mobility/sumo-grid/grid.net.xml` and `grid.rou.xml` with SUMO's tools, runs
SUMO on them and writes SUMO's per-vehicle result summary to `data/mobility/sumo-grid/reference.json`,
which `engine/tests/sumo_grid.rs` checks Machi against (mean trip duration within 10 %, the same vehicles
arrive). Without it, the committed files are used.

Then both tools run the same files `--repeat` times, each with a 1 s step (SUMO's default):
* SUMO: `sumo -n grid.net.xml -r grid.rou.xml --tripinfo-output …` (wall time of the process; SUMO's own
  "Duration" line is recorded too);
* Machi: `machi traffic grid.net.xml grid.rou.xml --step 1 --json` (its simulation time, the network and
  routes read excluded, and the process wall time).
Medians are reported with the ratio SUMO ÷ Machi, in `benches/peers/results/sumo_grid.json`.

    pip install eclipse-sumo
    cargo build --release -p machi
    python3 benches/peers/sumo_grid.py [--generate] [--repeat 3] [--threads 2]
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MACHI = ROOT / "target" / "release" / "machi"
DATA = ROOT / "data" / "mobility" / "sumo-grid"
NET = DATA / "grid.net.xml"
ROUTES = DATA / "grid.rou.xml"
REFERENCE = DATA / "reference.json"
RESULTS = ROOT / "benches" / "peers" / "results" / "sumo_grid.json"
VTYPE = ('<vType id="car" carFollowModel="IDM" accel="2.6" decel="4.5" tau="1.0" minGap="2.5" '
         'length="5.0" delta="4" sigma="0" speedDev="0"/>')


def sumo_tools():
    import sumo  # the eclipse-sumo wheel
    return Path(sumo.__file__).resolve().parent / "tools"


def generate():
    DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run(["netgenerate", "--grid", "--grid.number", "10", "--grid.length", "200",
                    "--default.lanenumber", "2", "--default-junction-type", "traffic_light",
                    "-o", str(NET)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        trips = Path(tmp) / "trips.xml"
        routed = Path(tmp) / "routed.rou.xml"
        subprocess.run([sys.executable, str(sumo_tools() / "randomTrips.py"), "-n", str(NET), "-e", "3600",
                        "-p", "1.0", "--seed", "42", "-o", str(trips)], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["duarouter", "-n", str(NET), "--route-files", str(trips), "-o", str(routed),
                        "--seed", "42", "--no-step-log"], check=True)
        text = routed.read_text()
    # Drop the generator's comment (it names temporary paths) and give every vehicle the IDM type.
    text = re.sub(r"<!--.*?-->\s*", "", text, flags=re.S)
    text = re.sub(r"(<routes[^>]*>\n)", lambda m: m.group(1) + "    " + VTYPE + "\n", text, count=1)
    text = text.replace("<vehicle id=", '<vehicle type="car" id=')
    ROUTES.write_text(text)


def run_sumo():
    with tempfile.TemporaryDirectory() as tmp:
        info = Path(tmp) / "tripinfo.xml"
        started = time.perf_counter()
        out = subprocess.run(["sumo", "-n", str(NET), "-r", str(ROUTES), "--tripinfo-output", str(info),
                              "--no-step-log", "--duration-log.statistics"],
                             check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
        trips = [t.attrib for t in ET.parse(info).getroot().iter("tripinfo")]
    own = re.search(r"Duration: ([0-9.]+)s", out.stdout)
    durations = [float(t["duration"]) for t in trips]
    return {
        "wall_s": wall,
        "own_duration_s": float(own.group(1)) if own else None,
        "arrived": len(trips),
        "arrived_ids": sorted(t["id"] for t in trips),
        "mean_duration_s": statistics.fmean(durations),
        "mean_time_loss_s": statistics.fmean(float(t["timeLoss"]) for t in trips),
        "mean_route_length_m": statistics.fmean(float(t["routeLength"]) for t in trips),
        "teleports": sum(1 for t in trips if t.get("vaporized")),
    }


def run_machi(threads):
    started = time.perf_counter()
    out = subprocess.run([str(MACHI), "traffic", str(NET), str(ROUTES), "--step", "1", "--json",
                          "--threads", str(threads)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    result = json.loads(out.stdout)
    result["wall_s"] = wall
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generate", action="store_true", help="remake the network, routes and reference")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.generate or not NET.exists():
        generate()
    sumo_runs = [run_sumo() for _ in range(args.repeat)]
    if args.generate or not REFERENCE.exists():
        ref = {k: v for k, v in sumo_runs[0].items() if k not in ("wall_s", "own_duration_s")}
        ref["sumo_version"] = subprocess.run(["sumo", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        REFERENCE.write_text(json.dumps(ref, indent=1) + "\n")
    machi_runs = [run_machi(args.threads) for _ in range(args.repeat)]
    med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    sumo, machi = sumo_runs[0], machi_runs[0]
    summary = {
        "case": "netgenerate grid 10x10, 200 m, 2 lanes, signals; randomTrips 1 veh/s for 1 h; IDM",
        "repeat": args.repeat,
        "threads": args.threads,
        "sumo": {
            "wall_s_median": med(sumo_runs, "wall_s"),
            "arrived": sumo["arrived"],
            "mean_duration_s": sumo["mean_duration_s"],
            "mean_time_loss_s": sumo["mean_time_loss_s"],
            "mean_route_length_m": sumo["mean_route_length_m"],
        },
        "machi": {
            "simulate_s_median": med(machi_runs, "simulate_s"),
            "wall_s_median": med(machi_runs, "wall_s"),
            "arrived": machi["arrived"],
            "teleported": machi["teleported"],
            "mean_duration_s": machi["mean_duration_s"],
            "mean_time_loss_s": machi["mean_time_loss_s"],
            "mean_route_length_m": machi["mean_route_length_m"],
            "updates_per_s_median": med(machi_runs, "updates_per_s"),
        },
    }
    summary["mean_duration_ratio_machi_over_sumo"] = machi["mean_duration_s"] / sumo["mean_duration_s"]
    summary["speedup_sumo_wall_over_machi_simulate"] = summary["sumo"]["wall_s_median"] / summary["machi"]["simulate_s_median"]
    summary["speedup_sumo_wall_over_machi_wall"] = summary["sumo"]["wall_s_median"] / summary["machi"]["wall_s_median"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
