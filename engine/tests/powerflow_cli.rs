//! `machi powerflow FILE --json`: the output format the issue names, in the file's bus order.

use std::process::Command;

#[test]
fn powerflow_json_lists_every_bus_in_file_order() {
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/grid/matpower/case14.m");
    let out = Command::new(env!("CARGO_BIN_EXE_machi")).args(["powerflow", case, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["converged"], true);
    assert!(v["iterations"].as_u64().unwrap() >= 2);
    assert!(v["solve_seconds"].as_f64().unwrap() > 0.0);
    let buses = v["buses"].as_array().unwrap();
    assert_eq!(buses.len(), 14);
    for (k, b) in buses.iter().enumerate() {
        assert_eq!(b["name"], (k + 1).to_string(), "MATPOWER bus numbers, in file order");
        assert!(b["vm_pu"].as_f64().unwrap() > 0.9);
        assert!(b["va_degree"].is_f64());
    }
    // The slack (bus 1) holds its set point, 1.06 pu at 0°.
    assert_eq!(buses[0]["vm_pu"].as_f64().unwrap(), 1.06);
    assert_eq!(buses[0]["va_degree"].as_f64().unwrap(), 0.0);
}

#[test]
fn a_diverged_power_flow_says_so_in_json_and_fails() {
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/grid/matpower/case14.m");
    let out = Command::new(env!("CARGO_BIN_EXE_machi"))
        .args(["powerflow", case, "--json", "--max-iterations", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["converged"], false);
    assert_eq!(v["iterations"], 1);
    assert!(v["error"].as_str().unwrap().contains("did not converge"));
}
