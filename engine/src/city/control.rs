//! Traffic control data of a city's road network, as imported: fixed-time signal programs and which
//! movement (link to link) each signal index controls, and the speed a turning movement allows. OSM has no
//! signal programs (only where signals stand); SUMO networks bring them. The microscopic model builds its
//! junction control from this, generating what is missing ([`crate::mobility::junctions`]).

use super::graph::LinkId;
use serde::{Deserialize, Serialize};

/// The light a movement shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Light {
    /// Go.
    Green,
    /// Stop if you can stop comfortably.
    Yellow,
    /// Stop.
    Red,
    /// Signal off or blinking: priority rules apply.
    Off,
}

impl Light {
    /// SUMO's state letters (`G`, `g`, `y`, `r`, `o`, `O`, `s`, `u`).
    pub fn from_sumo(c: char) -> Option<Light> {
        Some(match c {
            'G' | 'g' => Light::Green,
            'y' | 'Y' => Light::Yellow,
            'r' | 'R' | 'u' | 's' => Light::Red,
            'o' | 'O' => Light::Off,
            _ => return None,
        })
    }
}

/// One phase of a fixed-time plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// Duration (s).
    pub duration_s: f64,
    /// The light of every signal index of the controller.
    pub lights: Vec<Light>,
}

/// A fixed-time plan: phases repeating from the offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignalPlan {
    /// Clock time (s) at which the first phase starts (modulo the cycle).
    pub offset_s: f64,
    /// Phases in order.
    pub phases: Vec<Phase>,
}

impl SignalPlan {
    /// Cycle length (s).
    pub fn cycle_s(&self) -> f64 {
        self.phases.iter().map(|p| p.duration_s).sum()
    }

    /// Index of the phase running at clock time `t_s` (`None` for a plan without time).
    pub fn phase_at(&self, t_s: f64) -> Option<usize> {
        let cycle = self.cycle_s();
        if cycle <= 0.0 {
            return None;
        }
        let mut t = (t_s - self.offset_s).rem_euclid(cycle);
        for (k, p) in self.phases.iter().enumerate() {
            if t < p.duration_s {
                return Some(k);
            }
            t -= p.duration_s;
        }
        Some(self.phases.len() - 1)
    }

    /// The light of signal `index` in phase `phase` (red for an index the phase does not have).
    pub fn light_in(&self, phase: usize, index: u16) -> Light {
        self.phases[phase].lights.get(index as usize).copied().unwrap_or(Light::Red)
    }

    /// The light of signal `index` at clock time `t_s`.
    pub fn light(&self, index: u16, t_s: f64) -> Light {
        match self.phase_at(t_s) {
            Some(k) => self.light_in(k, index),
            None => Light::Off,
        }
    }
}

/// A signalised movement: from one link onto another, shown by signal `index` of controller `controller`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MovementSignal {
    /// Link arriving at the junction.
    pub from: LinkId,
    /// Link leaving it.
    pub to: LinkId,
    /// Index into [`TrafficControl::plans`].
    pub controller: u32,
    /// Signal index within the plan's phases.
    pub index: u16,
}

/// Imported traffic control of a road network (empty for OSM data).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficControl {
    /// Signal programs, one per controller.
    pub plans: Vec<SignalPlan>,
    /// Signalised movements.
    pub movements: Vec<MovementSignal>,
    /// Speed limits through the junction of turning movements (from, to, m/s), where known.
    pub turn_speeds: Vec<(LinkId, LinkId, f32)>,
}
