//! Parcel orders for the robot fleet: drawn from households, or read from a CSV file.
//!
//! Households order parcels as a Poisson process: each building's households together place orders at
//! `rate_per_household_day` × households per day, spread uniformly over the service hours, so the gaps
//! between a building's orders are exponential. Households = residents / `household_size`. Every order must
//! be delivered within `promise_s` of being placed to count as on time.
//!
//! Default rate: Japan's MLIT counted 5.0 billion home-delivery parcels in fiscal 2023 for about 56 million
//! households, about 0.24 parcels per household per day; the default gives a robot service a fifth of that.

use crate::error::{InputError, InputResult};
use crate::rng::{stream, Purpose};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A parcel to deliver.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    /// Index in the order list.
    pub id: u32,
    /// Building it goes to.
    pub building: u32,
    /// When it is placed (s since midnight).
    pub placed_s: f64,
    /// Latest on-time delivery (s since midnight).
    pub due_s: f64,
}

/// How households order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrderParams {
    /// Parcels per household per day taken by the robot service: 0.05 (a fifth of Japan's 0.24).
    pub rate_per_household_day: f64,
    /// Residents per household: 2.3 (Eurostat, EU average household size, 2022).
    pub household_size: f64,
    /// First and last time orders are placed (s since midnight): 8:00 to 20:00.
    pub hours_s: (f64, f64),
    /// Delivery promise (s): 2 h.
    pub promise_s: f64,
}

impl Default for OrderParams {
    fn default() -> Self {
        OrderParams {
            rate_per_household_day: 0.05,
            household_size: 2.3,
            hours_s: (8.0 * 3600.0, 20.0 * 3600.0),
            promise_s: 7200.0,
        }
    }
}

/// The day's orders from the residents per building, sorted by time (then building), numbered in that
/// order. Each building draws from its own random stream, so adding a building changes no other's orders.
pub fn household_orders(residents: &[u32], params: &OrderParams, seed: u64) -> Vec<Order> {
    let (open, close) = params.hours_s;
    let day_share = (close - open).max(0.0) / 86_400.0;
    let mut orders = Vec::new();
    for (b, &r) in residents.iter().enumerate() {
        let households = r as f64 / params.household_size;
        // Orders per second over the service hours (the day's rate packed into them).
        let per_s = households * params.rate_per_household_day / 86_400.0 / day_share.max(f64::MIN_POSITIVE);
        if per_s <= 0.0 {
            continue;
        }
        let mut rng = stream(seed, Purpose::ParcelOrders, b as u64, 0);
        let mut t = open;
        loop {
            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            t += -u.ln() / per_s;
            if t >= close {
                break;
            }
            orders.push(Order { id: 0, building: b as u32, placed_s: t, due_s: t + params.promise_s });
        }
    }
    orders.sort_by(|a, b| a.placed_s.total_cmp(&b.placed_s).then(a.building.cmp(&b.building)));
    for (i, o) in orders.iter_mut().enumerate() {
        o.id = i as u32;
    }
    orders
}

/// Latest order time accepted from a file (s): a week.
const MAX_ORDER_TIME_S: f64 = 7.0 * 86_400.0;

#[derive(Deserialize)]
struct CsvOrder {
    time_s: f64,
    building: u32,
    due_s: Option<f64>,
}

/// Orders from a CSV file with a header `time_s,building[,due_s]` (building = index in the city's building
/// list; without `due_s`, the promise applies). Errors name the file and the line.
pub fn read_orders_csv(path: &Path, buildings: usize, promise_s: f64) -> InputResult<Vec<Order>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| InputError::new(path, "file", e.to_string()))?;
    let mut orders = Vec::new();
    for row in reader.deserialize::<CsvOrder>() {
        let o = row.map_err(|e| {
            let place = e.position().map(|p| format!("line {}", p.line())).unwrap_or_else(|| "header".into());
            InputError::new(path, place, e.to_string())
        })?;
        let place = format!("line {}", orders.len() + 2);
        if o.building as usize >= buildings {
            return Err(InputError::new(path, &place, format!("building {} but the city has {buildings}", o.building)));
        }
        if !(0.0..=MAX_ORDER_TIME_S).contains(&o.time_s) {
            return Err(InputError::new(path, &place, format!("time_s {} is not a time of the run (s)", o.time_s)));
        }
        let due_s = o.due_s.unwrap_or(o.time_s + promise_s);
        orders.push(Order { id: 0, building: o.building, placed_s: o.time_s, due_s });
    }
    orders.sort_by(|a, b| a.placed_s.total_cmp(&b.placed_s).then(a.building.cmp(&b.building)));
    for (i, o) in orders.iter_mut().enumerate() {
        o.id = i as u32;
    }
    Ok(orders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn household_orders_follow_the_rate_and_stay_in_hours() {
        // 10 000 residents in 100 buildings: 4 348 households, 217 orders a day expected.
        let residents = vec![100; 100];
        let p = OrderParams::default();
        let orders = household_orders(&residents, &p, 3);
        let expected = 10_000.0 / 2.3 * 0.05;
        let n = orders.len() as f64;
        assert!((n - expected).abs() < 3.0 * expected.sqrt(), "{n} orders, {expected:.0} expected");
        assert!(orders.windows(2).all(|w| w[0].placed_s <= w[1].placed_s));
        assert!(orders.iter().all(|o| o.placed_s >= p.hours_s.0 && o.placed_s < p.hours_s.1));
        assert!(orders.iter().all(|o| o.due_s == o.placed_s + 7200.0));
        assert_eq!(orders, household_orders(&residents, &p, 3), "reproducible");
        assert_ne!(orders, household_orders(&residents, &p, 4));
    }

    #[test]
    fn csv_orders_are_read_and_bad_rows_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.csv");
        std::fs::write(&path, "time_s,building\n3600,2\n1800,1\n").unwrap();
        let orders = read_orders_csv(&path, 3, 600.0).unwrap();
        assert_eq!(orders.len(), 2);
        assert_eq!((orders[0].building, orders[0].placed_s, orders[0].due_s), (1, 1800.0, 2400.0));
        std::fs::write(&path, "time_s,building\n3600,7\n").unwrap();
        let e = read_orders_csv(&path, 3, 600.0).unwrap_err().to_string();
        assert!(e.contains("orders.csv") && e.contains("line 2") && e.contains("building 7"), "{e}");
        std::fs::write(&path, "time_s,building\nnoon,1\n").unwrap();
        let e = read_orders_csv(&path, 3, 600.0).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
