//! Machi's power flow against pandapower's on the same network, bus by bus and branch by branch. The
//! references come from `benches/peers/pandapower_results.py` (its header says how each was made).

use machi::grid::network::BranchKind;
use machi::grid::{PowerFlow, PowerFlowOptions};
use std::path::Path;

fn compare(network: &str, reference: &str, scale: f64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut net = machi::grid::read_case(&root.join("..").join(network)).unwrap();
    for inj in &mut net.injections {
        inj.p_mw *= scale;
        inj.q_mvar *= scale;
    }
    let text = std::fs::read_to_string(root.join("tests/data").join(reference)).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["scale"].as_f64().unwrap(), scale);
    // pandapower ran to 1e-10 MVA; the large PEGASE cases stall just above that in f64 round-off.
    let options = PowerFlowOptions { tolerance_mva: 1e-9, max_iterations: 20, ..PowerFlowOptions::default() };
    let sol = PowerFlow::new(&net, options).unwrap().solve(&net).unwrap();
    let (mut dvm, mut dva) = (0.0f64, 0.0f64);
    for (i, b) in net.buses.iter().enumerate() {
        let rb = &r["bus"][b.id.to_string()];
        dvm = dvm.max((sol.vm_pu[i] - rb["vm_pu"].as_f64().unwrap()).abs());
        dva = dva.max((sol.va_deg[i] - rb["va_degree"].as_f64().unwrap()).abs());
    }
    let (mut dp, mut di, mut dload) = (0.0f64, 0.0f64, 0.0f64);
    for (k, b) in net.branches.iter().enumerate() {
        let (table, p_key) = match b.kind {
            BranchKind::Line => ("line", "p_from_mw"),
            BranchKind::Transformer => ("trafo", "p_hv_mw"),
        };
        let rb = &r[table][b.source_index.to_string()];
        dp = dp.max((sol.p_from_mw[k] - rb[p_key].as_f64().unwrap()).abs());
        dload = dload.max((sol.loading_percent[k] - rb["loading_percent"].as_f64().unwrap()).abs());
        if b.kind == BranchKind::Line {
            di = di.max((sol.i_from_ka[k].max(sol.i_to_ka[k]) - rb["i_ka"].as_f64().unwrap()).abs());
        }
    }
    let dloss = (sol.losses_mw - r["losses_mw"].as_f64().unwrap()).abs();
    eprintln!(
        "{network} ×{scale} against pandapower {}: max |Δvm| {dvm:.2e} pu, |Δva| {dva:.2e}°, |Δp_from| {dp:.2e} MW, \
         |Δi| {di:.2e} kA, |Δloading| {dload:.2e} %, |Δlosses| {dloss:.2e} MW",
        r["pandapower"]
    );
    // Power differences relative to the system's size (335 GW of load in case9241pegase).
    let size = net.total_load_mw().abs().max(1.0);
    assert!(dvm < 1e-8, "vm {dvm}");
    assert!(dva < 1e-6, "va {dva}");
    assert!(dp < 1e-8 + 1e-11 * size, "p {dp}");
    assert!(di < 1e-8, "i {di}");
    assert!(dload < 1e-5, "loading {dload}");
    assert!(dloss < 1e-9 + 1e-11 * size, "losses {dloss}");
}

#[test]
fn ieee_european_lv_feeder_matches_pandapower() {
    compare("data/grid/ieee-european-lv.pandapower.json", "ieee-european-lv.pandapower-results.json", 1.0);
}

#[test]
fn ieee_european_lv_feeder_under_heavy_load_matches_pandapower() {
    compare("data/grid/ieee-european-lv.pandapower.json", "ieee-european-lv-x300.pandapower-results.json", 300.0);
}

#[test]
fn matpower_cases_as_pandapower_networks_match_pandapower() {
    // MATPOWER's case9, case118 and the PEGASE cases, as pandapower ships them (`pandapower.networks`):
    // generators as PV buses, shunts, tap-changing transformers.
    for case in ["case9", "case118", "case1354pegase", "case9241pegase"] {
        compare(&format!("data/grid/pandapower/{case}.json"), &format!("{case}.pandapower-results.json"), 1.0);
    }
}
