//! The grid domain on the shipped city: the Andorra baseline's synthesised grid through a June day (energy
//! balance of every step, plausible consumption, PV, EN 50160), its frames in the replay, and the storm's
//! flooded substations tripping, cutting supply and coming back after the repair delay.

mod common;

use machi::observe::replay::{decode_grid_frame, STREAM_GRID, STREAM_GRID_NETWORK};
use machi::replay::{ChunkKind, ReplayReader};
use machi::run::{run, RunOptions};
use machi::scenario::Scenario;

fn grid_frames(replay: &ReplayReader) -> Vec<(u64, machi::observe::replay::GridFrame)> {
    replay
        .chunks()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.kind == ChunkKind::Custom && c.stream == STREAM_GRID)
        .map(|(i, c)| (c.t_first_ms, decode_grid_frame(&replay.read_chunk(i).unwrap()).unwrap()))
        .collect()
}

#[test]
fn andorra_grid_day_balances_and_stays_in_band() {
    let dir = tempfile::tempdir().unwrap();
    // The baseline with half the drivers in electric cars that charge at home.
    let p = dir.path().join("ev.toml");
    let base = common::scenario("andorra/baseline.toml");
    std::fs::write(&p, format!("extends = {:?}\nname = \"ev\"\n[grid.ev]\nshare = 0.5\n", base.to_str().unwrap()))
        .unwrap();
    let scenario = Scenario::load(&p).unwrap();
    let out = dir.path().join("out");
    let summary = run(&scenario, &RunOptions { out_dir: out.clone(), threads: 2, seed: None }, |_, _| {}).unwrap();
    let g = &summary.kpis["grid"];
    let kpi = |k: &str| g[k].as_f64().unwrap_or_else(|| panic!("{k} in {g}"));
    eprintln!("{g}");
    assert_eq!(kpi("steps"), 96.0, "a power flow every 15 minutes");
    assert_eq!(kpi("power_flow_failed"), 0.0);
    // Every step: import + PV = load + losses (kW), to the solver's tolerance.
    assert!(kpi("energy_balance_max_error_kw") < 1e-3);
    let (load, pv, import, export, losses) =
        (kpi("load_kwh"), kpi("pv_kwh"), kpi("import_kwh"), kpi("export_kwh"), kpi("losses_kwh"));
    assert!((import - export + pv - load - losses).abs() < 1e-6 * load, "the day's energy balances");
    // Consumption: floor area × specific consumption over 365 days, give or take the day's profile.
    let consumers = kpi("consumers");
    assert!(consumers > 500.0);
    assert!(load > 0.0 && pv > 0.0 && losses > 0.0 && losses < 0.1 * load);
    let share = kpi("pv_self_consumption_share");
    assert!(share > 0.0 && share <= 1.0);
    assert_eq!(kpi("energy_not_served_kwh"), 0.0);
    assert!(kpi("min_voltage_pu") > 0.9 && kpi("max_voltage_pu") < 1.1);
    assert_eq!(kpi("buses_failing_en50160"), 0.0);
    assert!(kpi("co2_kg") > 0.0);
    // Home charging: every electric car's home arrival asks for the energy of its car legs; the grid delivers
    // it (part of the load), at most what all the day's car-km would need.
    let ev_kwh = kpi("ev_home_charging_kwh");
    let car_km = summary.kpis["mobility"]["vehicle_km"].as_f64().unwrap();
    assert!(kpi("ev_arrivals_charging") > 100.0, "{g}");
    assert!(ev_kwh > 0.1 * 0.5 * car_km * 0.18 && ev_kwh < car_km * 0.18, "{ev_kwh} kWh for {car_km} car-km");

    // The replay carries the network once and a frame per power flow: at noon PV lifts voltages above
    // those of the evening peak.
    let replay = ReplayReader::open(out.join("replay.machi")).unwrap();
    let network: serde_json::Value =
        serde_json::from_slice(&replay.static_payload(STREAM_GRID_NETWORK).unwrap().unwrap()).unwrap();
    let sites = network["sites"].as_array().unwrap().len();
    assert_eq!(sites as f64, kpi("substations") + 1.0, "every substation and the primary");
    let frames = grid_frames(&replay);
    assert_eq!(frames.len(), 96);
    let mean = |f: &machi::observe::replay::GridFrame| {
        let v: Vec<f64> = f.vm_pu.iter().filter(|v| v.is_finite()).map(|&v| v as f64).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let at = |h: u64| &frames.iter().find(|(t, _)| *t == h * 3_600_000).unwrap().1;
    assert!(mean(at(13)) > mean(at(20)), "noon {} vs evening {}", mean(at(13)), mean(at(20)));
    assert!(at(13).sites.iter().all(|&s| s == 0));
}

#[test]
fn flooded_substations_trip_and_return_after_the_repair_delay() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::scenario("andorra/storm.toml");
    // The storm window and the hours after it, with a one-hour repair delay.
    let p = dir.path().join("storm-grid.toml");
    std::fs::write(
        &p,
        format!(
            "extends = {:?}\nname = \"storm-grid\"\nstart = \"14:30\"\nduration = \"9h\"\n[grid]\nrepair_delay = \"1h\"\n",
            base.to_str().unwrap()
        ),
    )
    .unwrap();
    let scenario = Scenario::load(&p).unwrap();
    let out = dir.path().join("out");
    let summary = run(&scenario, &RunOptions { out_dir: out.clone(), threads: 2, seed: None }, |_, _| {}).unwrap();
    let g = &summary.kpis["grid"];
    eprintln!("{g}");
    let kpi = |k: &str| g[k].as_f64().unwrap();
    assert!(kpi("sites_tripped") >= 1.0, "the cloudburst floods some substation");
    assert!(kpi("energy_not_served_kwh") > 0.0 && kpi("customer_minutes_interrupted") > 0.0);
    assert!(kpi("energy_balance_max_error_kw") < 1e-3, "de-energised islands keep the balance");
    let frames = grid_frames(&ReplayReader::open(out.join("replay.machi")).unwrap());
    let out_at: Vec<(u64, usize)> =
        frames.iter().map(|(t, f)| (*t, f.sites.iter().filter(|&&s| s != 0).count())).collect();
    let first_out = out_at.iter().find(|(_, n)| *n > 0).expect("a site goes out").0;
    assert!(first_out >= 30 * 60_000, "nothing trips before the rain (starts 15:00, run starts 14:30)");
    // Tripped sites are de-energised: their buses carry NaN voltages in the frame.
    let (_, during) = frames.iter().find(|(t, _)| *t == first_out).unwrap();
    assert!(during.vm_pu.iter().any(|v| v.is_nan()));
    // Sites come back once their water is under the trip depth and the hour of repair has passed (some stand
    // in closed depressions of the terrain where the water stays all night).
    let most = out_at.iter().map(|x| x.1).max().unwrap();
    assert!(out_at.last().unwrap().1 < most, "some sites restored by the end: {out_at:?}");
}

#[test]
fn substation_batteries_lower_the_peak_transformer_loading() {
    // The Andorra day's most loaded transformer carries a PV back-feed plateau at noon; community batteries
    // of 2 kWh per kVA at every substation absorb it.
    let dir = tempfile::tempdir().unwrap();
    let base = common::scenario("andorra/baseline.toml");
    let peak = |extra: &str, name: &str| {
        let p = dir.path().join(format!("{name}.toml"));
        std::fs::write(&p, format!("extends = {:?}\nname = \"{name}\"\n{extra}", base.to_str().unwrap())).unwrap();
        let scenario = Scenario::load(&p).unwrap();
        let out = dir.path().join(name);
        let summary = run(&scenario, &RunOptions { out_dir: out, threads: 2, seed: None }, |_, _| {}).unwrap();
        let g = &summary.kpis["grid"];
        assert!(g["energy_balance_max_error_kw"].as_f64().unwrap() < 1e-3);
        g["peak_transformer_loading_percent"].as_f64().unwrap()
    };
    let without = peak("", "without");
    let with = peak("[grid.substation_battery]\nshare = 1.0\nkwh_per_kva = 2.0\n", "with");
    eprintln!("peak transformer loading {without:.2} % without, {with:.2} % with substation batteries");
    assert!(with < without - 5.0, "{with} vs {without}");
}
