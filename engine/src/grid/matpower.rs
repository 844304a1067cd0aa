//! MATPOWER case files (`.m`, format version 2: Zimmerman & Murillo-Sánchez, MATPOWER User's Manual,
//! appendix B): `mpc.baseMVA`, `mpc.bus`, `mpc.gen` and `mpc.branch` matrices. Cost data and any other field
//! are ignored. Bus types: 3 reference, 2 PV, 1 PQ, 4 isolated; as MATPOWER does, a PV or reference bus with
//! no generator in service falls back to PQ.

use super::network::{Branch, BranchKind, Bus, Injection, InjectionKind, Network, Rating, Shunt, VoltageControl};
use crate::error::{InputError, InputResult};
use num_complex::Complex64;
use std::path::Path;

/// A matrix as written in the file: rows of numbers, with the line each row starts on.
struct Matrix {
    rows: Vec<(usize, Vec<f64>)>,
}

/// Reads a MATPOWER case file. Errors name the file and the line.
pub fn read(path: &Path) -> InputResult<Network> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::new(path, "file", e.to_string()))?;
    parse(&text, path)
}

/// Parses the text of a case file (`path` is named in errors).
pub fn parse(text: &str, path: &Path) -> InputResult<Network> {
    let err = |line: usize, m: String| InputError::new(path, format!("line {line}"), m);
    let mut base_mva = None;
    let mut matrices: std::collections::HashMap<String, Matrix> = Default::default();
    let lines: Vec<&str> = text.lines().map(|l| l.split('%').next().unwrap_or("")).collect();
    let mut k = 0;
    while k < lines.len() {
        let line = lines[k].trim();
        if let Some(rest) = line.strip_prefix("mpc.") {
            let (name, value) = rest.split_once('=').ok_or_else(|| err(k + 1, format!("expected `mpc.{rest} = …`")))?;
            let (name, value) = (name.trim().to_string(), value.trim());
            if name == "baseMVA" {
                let v = value.trim_end_matches(';').trim();
                base_mva = Some(v.parse::<f64>().map_err(|_| err(k + 1, format!("baseMVA {v:?} is not a number")))?);
            } else if let Some(body) = value.strip_prefix('[') {
                let start = k + 1;
                let mut rows = Vec::new();
                let mut chunk = body.to_string();
                loop {
                    let done = chunk.contains(']');
                    let content = chunk.split(']').next().unwrap_or("");
                    for row in content.split(';') {
                        let nums: Result<Vec<f64>, _> = row
                            .split(|c: char| c.is_whitespace() || c == ',')
                            .filter(|t| !t.is_empty())
                            .map(|t| t.parse::<f64>().map_err(|_| t.to_string()))
                            .collect();
                        let nums = nums.map_err(|t| err(k + 1, format!("{t:?} in mpc.{name} is not a number")))?;
                        if !nums.is_empty() {
                            rows.push((k + 1, nums));
                        }
                    }
                    if done {
                        break;
                    }
                    k += 1;
                    if k == lines.len() {
                        return Err(err(start, format!("mpc.{name} = [ is never closed with ]")));
                    }
                    chunk = lines[k].to_string();
                }
                matrices.insert(name, Matrix { rows });
            }
        }
        k += 1;
    }
    let base_mva = base_mva.ok_or_else(|| InputError::new(path, "mpc.baseMVA", "missing".to_string()))?;
    let get = |name: &str, min_cols: usize| -> InputResult<&Matrix> {
        let m = matrices.get(name).ok_or_else(|| InputError::new(path, format!("mpc.{name}"), "missing"))?;
        if let Some((line, r)) = m.rows.iter().find(|(_, r)| r.len() < min_cols) {
            return Err(err(*line, format!("mpc.{name} row has {} columns, needs at least {min_cols}", r.len())));
        }
        Ok(m)
    };
    let (bus_m, gen_m, branch_m) = (get("bus", 13)?, get("gen", 10)?, get("branch", 11)?);
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut net = Network { name, base_mva, f_hz: 50.0, ..Network::default() };
    let mut index = std::collections::HashMap::new();
    let mut bus_type = Vec::new();
    for (line, r) in &bus_m.rows {
        let id = r[0] as i64;
        if index.insert(id, net.buses.len()).is_some() {
            return Err(err(*line, format!("bus {id} appears twice")));
        }
        let kind = r[1] as i64;
        if !(1..=4).contains(&kind) {
            return Err(err(
                *line,
                format!("bus {id} has type {kind}; types are 1 (PQ), 2 (PV), 3 (reference), 4 (isolated)"),
            ));
        }
        bus_type.push((kind, r[7], r[8]));
        let b = net.buses.len();
        net.buses.push(Bus { id, name: None, vn_kv: if r[9] > 0.0 { r[9] } else { 1.0 }, in_service: kind != 4 });
        if r[2] != 0.0 || r[3] != 0.0 {
            net.injections.push(Injection {
                kind: InjectionKind::Load,
                source_index: b,
                bus: b,
                p_mw: -r[2],
                q_mvar: -r[3],
                in_service: true,
            });
        }
        if r[4] != 0.0 || r[5] != 0.0 {
            net.shunts.push(Shunt { bus: b, p_mw: r[4], q_mvar: -r[5], in_service: true });
        }
    }
    let bus_of =
        |line: usize, id: f64| index.get(&(id as i64)).copied().ok_or_else(|| err(line, format!("no bus {id}")));
    let mut controlled = vec![false; net.buses.len()];
    for (g, (line, r)) in gen_m.rows.iter().enumerate() {
        let b = bus_of(*line, r[0])?;
        let on = r[7] > 0.0;
        net.injections.push(Injection {
            kind: InjectionKind::Gen,
            source_index: g,
            bus: b,
            p_mw: r[1],
            q_mvar: r[2],
            in_service: on,
        });
        let (kind, _, va) = bus_type[b];
        // The first in-service generator at a PV or reference bus sets its voltage.
        if on && (kind == 2 || kind == 3) && !controlled[b] {
            controlled[b] = true;
            net.controls.push(VoltageControl { bus: b, vm_pu: r[5], va_deg: va, slack: kind == 3, in_service: true });
        }
    }
    for (k, (line, r)) in branch_m.rows.iter().enumerate() {
        let (from, to) = (bus_of(*line, r[0])?, bus_of(*line, r[1])?);
        let (rr, x, b) = (r[2], r[3], r[4]);
        if rr == 0.0 && x == 0.0 {
            return Err(err(*line, format!("branch {} has zero impedance", k + 1)));
        }
        let y_series = Complex64::new(1.0, 0.0) / Complex64::new(rr, x);
        let half = Complex64::new(0.0, b / 2.0);
        let (ratio, shift) = (r[8], r[9]);
        net.branches.push(Branch {
            kind: if ratio != 0.0 || shift != 0.0 { BranchKind::Transformer } else { BranchKind::Line },
            source_index: k,
            from,
            to,
            y_series,
            y_from: half,
            y_to: half,
            ratio: if ratio == 0.0 { 1.0 } else { ratio },
            shift_deg: shift,
            rating: if r[5] > 0.0 { Rating::Mva(r[5]) } else { Rating::None },
            in_service: r[10] > 0.0,
        });
    }
    Ok(net)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The WSCC 9-bus system (Anderson & Fouad, "Power System Control and Stability", 1977, example 2.6)
    /// written as a MATPOWER case, with the textbook's generator voltages (1.04, 1.025, 1.025 pu).
    pub const CASE9: &str = "function mpc = case9
mpc.version = '2';
mpc.baseMVA = 100;
mpc.bus = [
	1	3	0	0	0	0	1	1	0	345	1	1.1	0.9;
	2	2	0	0	0	0	1	1	0	345	1	1.1	0.9;
	3	2	0	0	0	0	1	1	0	345	1	1.1	0.9;
	4	1	0	0	0	0	1	1	0	345	1	1.1	0.9;
	5	1	90	30	0	0	1	1	0	345	1	1.1	0.9;
	6	1	0	0	0	0	1	1	0	345	1	1.1	0.9;
	7	1	100	35	0	0	1	1	0	345	1	1.1	0.9;
	8	1	0	0	0	0	1	1	0	345	1	1.1	0.9;
	9	1	125	50	0	0	1	1	0	345	1	1.1	0.9;
];
mpc.gen = [
	1	72.3	27.03	300	-300	1.04	100	1	250	10	0	0	0	0	0	0	0	0	0	0	0;
	2	163	6.54	300	-300	1.025	100	1	300	10	0	0	0	0	0	0	0	0	0	0	0;
	3	85	-10.95	300	-300	1.025	100	1	270	10	0	0	0	0	0	0	0	0	0	0	0;
];
mpc.branch = [
	1	4	0	0.0576	0	250	250	250	0	0	1	-360	360;
	4	5	0.017	0.092	0.158	250	250	250	0	0	1	-360	360;
	5	6	0.039	0.17	0.358	150	150	150	0	0	1	-360	360;
	3	6	0	0.0586	0	300	300	300	0	0	1	-360	360;
	6	7	0.0119	0.1008	0.209	150	150	150	0	0	1	-360	360;
	7	8	0.0085	0.072	0.149	250	250	250	0	0	1	-360	360;
	8	2	0	0.0625	0	250	250	250	0	0	1	-360	360;
	8	9	0.032	0.161	0.306	250	250	250	0	0	1	-360	360;
	9	4	0.01	0.085	0.176	250	250	250	0	0	1	-360	360;
];
";

    #[test]
    fn reads_case9() {
        let net = parse(CASE9, Path::new("case9.m")).unwrap();
        assert_eq!((net.buses.len(), net.branches.len(), net.base_mva), (9, 9, 100.0));
        assert_eq!(net.controls.iter().filter(|c| c.slack).count(), 1);
        assert_eq!(net.controls.len(), 3);
        assert!((net.total_load_mw() - 315.0).abs() < 1e-12);
    }

    #[test]
    fn errors_name_the_line() {
        let bad = CASE9.replace("5	1	90	30", "5	1	9O	30");
        let e = parse(&bad, Path::new("case9.m")).unwrap_err().to_string();
        assert!(e.contains("case9.m") && e.contains("line 9") && e.contains("9O"), "{e}");
        let e = parse(&CASE9.replace("mpc.baseMVA = 100;", ""), Path::new("x.m")).unwrap_err().to_string();
        assert!(e.contains("baseMVA"), "{e}");
    }
}
