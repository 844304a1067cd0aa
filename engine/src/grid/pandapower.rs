//! pandapower networks saved with `pandapower.to_json` (Thurner et al. 2018, "pandapower — an open-source
//! Python tool for convenient modeling, analysis, and optimization of electric power systems", IEEE Trans.
//! Power Systems 33(6)), converted to the balanced [`Network`] the way pandapower's own power flow builds
//! its internal case (the conventions are listed in `data/grid/reference/README.md`):
//!
//! - per unit on `net.sn_mva` and each bus's `vn_kv`;
//! - lines: R, X, C, G per km × length, divided (R, X) or multiplied (C, G) by `parallel`; the charging
//!   split in half at both ends; rating `max_i_ka · df · parallel`;
//! - two-winding transformers in the T model (`trafo_model = "t"`, pandapower's default): short-circuit
//!   impedance from `vk_percent`/`vkr_percent`, magnetising admittance from `pfe_kw`/`i0_percent` in the
//!   middle, turned into the equivalent π; off-nominal ratio from the rated and bus voltages and the tap;
//!   the phase shift `shift_degree` (voltage angles calculated);
//! - loads, static generators and storage at constant power (`p_mw · scaling`, load convention for loads
//!   and storage), asymmetric loads and static generators as the sum of their phases;
//! - external grids are slacks; generators are PV buses;
//! - closed bus–bus switches merge their buses (the merged bus reports its group's voltage); a line open
//!   at one end stays energised from the other, as in pandapower: its floating end is reduced away (Kron)
//!   into a shunt at the connected bus, so its charging current flows; a line open at both ends and a
//!   transformer with an open switch are disconnected (the transformer's no-load current is left out);
//! - out-of-service elements are left out.
//!
//! What the balanced model cannot represent is refused with an error naming the table: three-winding
//! transformers, impedances, DC lines, wards, SVC/SSC/VSC/TCSC, motors with nonzero power, and loads with
//! voltage-dependent shares (`const_z_*`, `const_i_*` ≠ 0).

use super::network::{Branch, Bus, Injection, InjectionKind, LineType, Network, Shunt, TrafoType, VoltageControl};
use crate::error::{InputError, InputResult};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// One pandapower table (a pandas DataFrame in "split" orientation).
struct Table {
    name: String,
    columns: HashMap<String, usize>,
    index: Vec<i64>,
    data: Vec<Vec<Value>>,
}

impl Table {
    fn len(&self) -> usize {
        self.data.len()
    }

    fn value(&self, row: usize, col: &str) -> Option<&Value> {
        self.columns.get(col).and_then(|&c| self.data[row].get(c)).filter(|v| !v.is_null())
    }

    /// A number (NaN and missing give `default`).
    fn f64_or(&self, row: usize, col: &str, default: f64) -> f64 {
        match self.value(row, col) {
            Some(Value::Number(n)) => n.as_f64().filter(|v| v.is_finite()).unwrap_or(default),
            Some(Value::Bool(b)) => f64::from(u8::from(*b)),
            _ => default,
        }
    }

    /// A required number: an error naming the table, row and column when missing.
    fn f64(&self, row: usize, col: &str, path: &Path) -> InputResult<f64> {
        let v = self.f64_or(row, col, f64::NAN);
        if v.is_nan() {
            return Err(InputError::new(
                path,
                format!("{}[{}].{col}", self.name, self.index[row]),
                "missing or not a number".to_string(),
            ));
        }
        Ok(v)
    }

    fn bool_or(&self, row: usize, col: &str, default: bool) -> bool {
        match self.value(row, col) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|v| v != 0.0),
            _ => default,
        }
    }

    fn str(&self, row: usize, col: &str) -> Option<String> {
        match self.value(row, col) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Reads a pandapower JSON network. Errors name the file and the table, row and column.
pub fn read(path: &Path) -> InputResult<Network> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::new(path, "file", e.to_string()))?;
    let root: Value = serde_json::from_str(&text)
        .map_err(|e| InputError::new(path, format!("line {}, column {}", e.line(), e.column()), e.to_string()))?;
    let net = root.get("_object").unwrap_or(&root);
    if !net.is_object() || net.get("bus").is_none() {
        return Err(InputError::new(path, "top level", "not a pandapower network (no `bus` table)".to_string()));
    }
    let table = |name: &str| -> InputResult<Option<Table>> { read_table(net, name, path) };
    let sn_mva = net.get("sn_mva").and_then(Value::as_f64).unwrap_or(1.0);
    let f_hz = net.get("f_hz").and_then(Value::as_f64).unwrap_or(50.0);
    let name = net
        .get("name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
    for unsupported in
        ["trafo3w", "impedance", "dcline", "ward", "xward", "svc", "ssc", "vsc", "tcsc", "line_dc", "bus_dc"]
    {
        if let Some(t) = table(unsupported)? {
            if (0..t.len()).any(|r| t.bool_or(r, "in_service", true)) {
                return Err(InputError::new(
                    path,
                    unsupported,
                    format!("{} in-service {unsupported} element(s): not supported by Machi's balanced model", t.len()),
                ));
            }
        }
    }
    let bus_t = table("bus")?.ok_or_else(|| InputError::new(path, "bus", "missing"))?;
    let mut network = Network { name, base_mva: sn_mva, f_hz, ..Network::default() };
    let mut bus_of: HashMap<i64, usize> = HashMap::new();
    for r in 0..bus_t.len() {
        bus_of.insert(bus_t.index[r], network.buses.len());
        network.buses.push(Bus {
            id: bus_t.index[r],
            name: bus_t.str(r, "name"),
            vn_kv: bus_t.f64(r, "vn_kv", path)?,
            in_service: bus_t.bool_or(r, "in_service", true),
        });
    }
    // Closed bus–bus switches merge buses: every bus maps to its group's representative (union–find).
    let mut parent: Vec<usize> = (0..network.buses.len()).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let switches = table("switch")?;
    // Open element switches: (element kind, element index, the bus the switch sits at).
    let mut open_elements: Vec<(String, i64, i64)> = Vec::new();
    if let Some(sw) = &switches {
        for r in 0..sw.len() {
            let closed = sw.bool_or(r, "closed", true);
            let et = sw.str(r, "et").unwrap_or_default();
            let element = sw.f64(r, "element", path)? as i64;
            let bus = sw.f64(r, "bus", path)? as i64;
            match (et.as_str(), closed) {
                ("b", true) => {
                    let (a, b) =
                        (lookup(&bus_of, bus, sw, r, "bus", path)?, lookup(&bus_of, element, sw, r, "element", path)?);
                    let (ra, rb) = (find(&mut parent, a), find(&mut parent, b));
                    parent[rb] = ra;
                }
                ("l", false) => open_elements.push(("line".into(), element, bus)),
                ("t", false) => open_elements.push(("trafo".into(), element, bus)),
                _ => {}
            }
        }
    }
    let merged: Vec<usize> = (0..network.buses.len()).map(|i| find(&mut parent, i)).collect();
    let bus = |t: &Table, r: usize, col: &str| -> InputResult<usize> {
        let id = t.f64(r, col, path)? as i64;
        Ok(merged[lookup(&bus_of, id, t, r, col, path)?])
    };
    let is_open = |kind: &str, id: i64| open_elements.iter().any(|(k, e, _)| k == kind && *e == id);
    let is_open_at =
        |kind: &str, id: i64, at: i64| open_elements.iter().any(|(k, e, b)| k == kind && *e == id && *b == at);

    if let Some(t) = table("line")? {
        for r in 0..t.len() {
            let (from, to) = (bus(&t, r, "from_bus")?, bus(&t, r, "to_bus")?);
            let length = t.f64(r, "length_km", path)?;
            let lt = LineType {
                name: t.str(r, "std_type").unwrap_or_default(),
                r_ohm_per_km: t.f64(r, "r_ohm_per_km", path)?,
                x_ohm_per_km: t.f64(r, "x_ohm_per_km", path)?,
                c_nf_per_km: t.f64_or(r, "c_nf_per_km", 0.0),
                g_us_per_km: t.f64_or(r, "g_us_per_km", 0.0),
                max_i_ka: t.f64_or(r, "max_i_ka", f64::NAN),
            };
            if lt.r_ohm_per_km == 0.0 && lt.x_ohm_per_km == 0.0 || length <= 0.0 {
                return Err(InputError::new(path, format!("line[{}]", t.index[r]), "zero impedance".to_string()));
            }
            let branch =
                network.line_branch(from, to, length, &lt, t.f64_or(r, "parallel", 1.0), t.f64_or(r, "df", 1.0));
            let in_service = t.bool_or(r, "in_service", true);
            let id = t.index[r];
            let (from_open, to_open) = (
                is_open_at("line", id, t.f64(r, "from_bus", path)? as i64),
                is_open_at("line", id, t.f64(r, "to_bus", path)? as i64),
            );
            // A line open at one end stays energised from the other: its charging current flows. The
            // floating end is eliminated (Kron reduction), leaving a shunt at the connected end.
            if in_service && from_open != to_open {
                let (bus, y_near, y_far) =
                    if to_open { (from, branch.y_from, branch.y_to) } else { (to, branch.y_to, branch.y_from) };
                let y = y_near + branch.y_series * y_far / (branch.y_series + y_far);
                network.shunts.push(Shunt {
                    bus,
                    p_mw: y.re * network.base_mva,
                    q_mvar: -y.im * network.base_mva,
                    in_service: true,
                });
            }
            network.branches.push(Branch {
                source_index: r,
                in_service: in_service && !from_open && !to_open,
                ..branch
            });
        }
    }
    if let Some(t) = table("trafo")? {
        for r in 0..t.len() {
            let (hv, lv) = (bus(&t, r, "hv_bus")?, bus(&t, r, "lv_bus")?);
            let branch = transformer(&t, r, hv, lv, &network, path)?;
            let open = is_open("trafo", t.index[r]);
            network.branches.push(Branch { in_service: branch.in_service && !open, ..branch });
        }
    }
    // Injections, generator convention.
    type Spec = (&'static str, InjectionKind, f64);
    let specs: [Spec; 4] = [
        ("load", InjectionKind::Load, -1.0),
        ("sgen", InjectionKind::StaticGen, 1.0),
        ("storage", InjectionKind::Storage, -1.0),
        ("motor", InjectionKind::Load, -1.0),
    ];
    for (name, kind, sign) in specs {
        let Some(t) = table(name)? else { continue };
        for r in 0..t.len() {
            if name == "load" {
                for c in [
                    "const_z_p_percent",
                    "const_z_q_percent",
                    "const_i_p_percent",
                    "const_i_q_percent",
                    "const_z_percent",
                    "const_i_percent",
                ] {
                    if t.f64_or(r, c, 0.0) != 0.0 {
                        return Err(InputError::new(
                            path,
                            format!("load[{}].{c}", t.index[r]),
                            "voltage-dependent loads are not supported: constant power only".to_string(),
                        ));
                    }
                }
            }
            let scaling = t.f64_or(r, "scaling", 1.0);
            let (p, q) = if name == "motor" {
                let p = t.f64_or(r, "pn_mech_mw", 0.0);
                if p != 0.0 && t.bool_or(r, "in_service", true) {
                    return Err(InputError::new(
                        path,
                        format!("motor[{}]", t.index[r]),
                        "motors are not supported".to_string(),
                    ));
                }
                (0.0, 0.0)
            } else {
                (t.f64(r, "p_mw", path)? * scaling, t.f64_or(r, "q_mvar", 0.0) * scaling)
            };
            network.injections.push(Injection {
                kind,
                source_index: r,
                bus: bus(&t, r, "bus")?,
                p_mw: sign * p,
                q_mvar: sign * q,
                in_service: t.bool_or(r, "in_service", true),
            });
        }
    }
    for (name, kind, sign) in
        [("asymmetric_load", InjectionKind::Load, -1.0), ("asymmetric_sgen", InjectionKind::StaticGen, 1.0)]
    {
        let Some(t) = table(name)? else { continue };
        for r in 0..t.len() {
            let scaling = t.f64_or(r, "scaling", 1.0);
            let sum = |cols: [&str; 3]| cols.iter().map(|c| t.f64_or(r, c, 0.0)).sum::<f64>() * scaling;
            network.injections.push(Injection {
                kind,
                source_index: r,
                bus: bus(&t, r, "bus")?,
                p_mw: sign * sum(["p_a_mw", "p_b_mw", "p_c_mw"]),
                q_mvar: sign * sum(["q_a_mvar", "q_b_mvar", "q_c_mvar"]),
                in_service: t.bool_or(r, "in_service", true),
            });
        }
    }
    if let Some(t) = table("shunt")? {
        for r in 0..t.len() {
            let b = bus(&t, r, "bus")?;
            let step = t.f64_or(r, "step", 1.0);
            // Rated at vn_kv: scale to the bus's nominal voltage.
            let ratio = network.buses[b].vn_kv / t.f64_or(r, "vn_kv", network.buses[b].vn_kv);
            network.shunts.push(Shunt {
                bus: b,
                p_mw: t.f64_or(r, "p_mw", 0.0) * step * ratio * ratio,
                q_mvar: t.f64_or(r, "q_mvar", 0.0) * step * ratio * ratio,
                in_service: t.bool_or(r, "in_service", true),
            });
        }
    }
    if let Some(t) = table("ext_grid")? {
        for r in 0..t.len() {
            let b = bus(&t, r, "bus")?;
            let on = t.bool_or(r, "in_service", true);
            network.controls.push(VoltageControl {
                bus: b,
                vm_pu: t.f64_or(r, "vm_pu", 1.0),
                va_deg: t.f64_or(r, "va_degree", 0.0),
                slack: true,
                in_service: on,
            });
            network.injections.push(Injection {
                kind: InjectionKind::ExternalGrid,
                source_index: r,
                bus: b,
                p_mw: 0.0,
                q_mvar: 0.0,
                in_service: on,
            });
        }
    }
    if let Some(t) = table("gen")? {
        for r in 0..t.len() {
            let b = bus(&t, r, "bus")?;
            let on = t.bool_or(r, "in_service", true);
            let scaling = t.f64_or(r, "scaling", 1.0);
            network.controls.push(VoltageControl {
                bus: b,
                vm_pu: t.f64_or(r, "vm_pu", 1.0),
                va_deg: 0.0,
                slack: t.bool_or(r, "slack", false),
                in_service: on,
            });
            network.injections.push(Injection {
                kind: InjectionKind::Gen,
                source_index: r,
                bus: b,
                p_mw: t.f64(r, "p_mw", path)? * scaling,
                q_mvar: 0.0,
                in_service: on,
            });
        }
    }
    // Merged-away buses carry nothing: take them out of the power flow.
    for (i, &m) in merged.iter().enumerate() {
        if m != i {
            network.buses[i].in_service = false;
            network.merged_buses.push((i, m));
        }
    }
    Ok(network)
}

fn lookup(bus_of: &HashMap<i64, usize>, id: i64, t: &Table, r: usize, col: &str, path: &Path) -> InputResult<usize> {
    bus_of
        .get(&id)
        .copied()
        .ok_or_else(|| InputError::new(path, format!("{}[{}].{col}", t.name, t.index[r]), format!("no bus {id}")))
}

/// A two-winding transformer row as a branch from its HV to its LV bus: the type from the row, the tap
/// (position against neutral, on the HV or LV side; a ratio tap scales that winding's voltage, a phase tap
/// adds `tap_step_degree` per step) and the vector group's shift.
fn transformer(t: &Table, r: usize, hv: usize, lv: usize, net: &Network, path: &Path) -> InputResult<Branch> {
    let tt = TrafoType {
        name: t.str(r, "std_type").unwrap_or_default(),
        sn_mva: t.f64(r, "sn_mva", path)?,
        vn_hv_kv: t.f64(r, "vn_hv_kv", path)?,
        vn_lv_kv: t.f64(r, "vn_lv_kv", path)?,
        vk_percent: t.f64(r, "vk_percent", path)?,
        vkr_percent: t.f64(r, "vkr_percent", path)?,
        pfe_kw: t.f64_or(r, "pfe_kw", 0.0),
        i0_percent: t.f64_or(r, "i0_percent", 0.0),
        shift_degree: t.f64_or(r, "shift_degree", 0.0),
    };
    let tap_pos = t.f64_or(r, "tap_pos", f64::NAN);
    let tap_neutral = t.f64_or(r, "tap_neutral", f64::NAN);
    let step_percent = t.f64_or(r, "tap_step_percent", f64::NAN);
    let step_degree = t.f64_or(r, "tap_step_degree", 0.0);
    let tap_side = t.str(r, "tap_side").unwrap_or_default();
    let steps = if tap_pos.is_finite() && tap_neutral.is_finite() { tap_pos - tap_neutral } else { 0.0 };
    let (mut ratio_hv, mut ratio_lv) = (tt.vn_hv_kv, tt.vn_lv_kv);
    let mut shift = tt.shift_degree;
    if steps != 0.0 && step_percent.is_finite() {
        let factor = 1.0 + steps * step_percent / 100.0;
        match tap_side.as_str() {
            "hv" => ratio_hv *= factor,
            "lv" => ratio_lv *= factor,
            _ => {}
        }
    }
    if steps != 0.0 && step_degree != 0.0 {
        shift += if tap_side == "lv" { -steps * step_degree } else { steps * step_degree };
    }
    let branch = net.transformer_branch(
        hv,
        lv,
        &tt,
        ratio_hv,
        ratio_lv,
        shift,
        t.f64_or(r, "parallel", 1.0),
        t.f64_or(r, "df", 1.0),
    );
    Ok(Branch { source_index: r, in_service: t.bool_or(r, "in_service", true), ..branch })
}

/// Reads table `name` of the network object (None when absent or empty).
fn read_table(net: &Value, name: &str, path: &Path) -> InputResult<Option<Table>> {
    let Some(v) = net.get(name) else { return Ok(None) };
    let inner = match v.get("_object") {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s)
            .map_err(|e| InputError::new(path, format!("table {name}"), format!("not a DataFrame: {e}")))?,
        Some(o) => o.clone(),
        None => return Ok(None),
    };
    let columns: HashMap<String, usize> = inner
        .get("columns")
        .and_then(Value::as_array)
        .map(|c| c.iter().enumerate().filter_map(|(i, n)| n.as_str().map(|n| (n.to_string(), i))).collect())
        .unwrap_or_default();
    let index: Vec<i64> = inner
        .get("index")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_i64().unwrap_or(-1)).collect())
        .unwrap_or_default();
    let data: Vec<Vec<Value>> = inner
        .get("data")
        .and_then(Value::as_array)
        .map(|rows| rows.iter().map(|r| r.as_array().cloned().unwrap_or_default()).collect())
        .unwrap_or_default();
    if data.is_empty() {
        return Ok(None);
    }
    if index.len() != data.len() {
        return Err(InputError::new(path, format!("table {name}"), "index and data lengths differ".to_string()));
    }
    Ok(Some(Table { name: name.to_string(), columns, index, data }))
}
