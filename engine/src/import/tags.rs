//! Interpreting OpenStreetMap tags into Machi's model — shared by the PBF and GeoJSON importers, since the
//! GeoJSON street files carry OSM tags too.
//!
//! Defaults for untagged ways and buildings live in [`TagDefaults`], one table with a unit and a source for
//! each value; a scenario may override them (`[city.defaults]`).

use serde::{Deserialize, Serialize};

/// OSM `highway=*` classes Machi distinguishes. `*_link` roads take their parent's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the variants are the OSM `highway` values of the same names
pub enum WayClass {
    Motorway,
    Trunk,
    Primary,
    Secondary,
    Tertiary,
    Unclassified,
    Residential,
    LivingStreet,
    Service,
    Track,
    Pedestrian,
    Footway,
    Path,
    Steps,
    Cycleway,
}

impl WayClass {
    /// Class of an OSM `highway` value; `None` for values Machi does not route on (construction, proposed,
    /// bus_guideway, raceway, elevator, corridor, …).
    pub fn from_highway(value: &str) -> Option<WayClass> {
        use WayClass::*;
        Some(match value.trim() {
            "motorway" | "motorway_link" => Motorway,
            "trunk" | "trunk_link" => Trunk,
            "primary" | "primary_link" => Primary,
            "secondary" | "secondary_link" => Secondary,
            "tertiary" | "tertiary_link" => Tertiary,
            "unclassified" | "road" => Unclassified,
            "residential" => Residential,
            "living_street" => LivingStreet,
            "service" => Service,
            "track" => Track,
            "pedestrian" => Pedestrian,
            "footway" | "sidewalk" | "crossing" => Footway,
            "path" | "bridleway" => Path,
            "steps" => Steps,
            "cycleway" => Cycleway,
            _ => return None,
        })
    }

    /// Whether motor vehicles may drive on this class (before `access`/`motor_vehicle` tags).
    pub fn drivable(self) -> bool {
        use WayClass::*;
        matches!(
            self,
            Motorway
                | Trunk
                | Primary
                | Secondary
                | Tertiary
                | Unclassified
                | Residential
                | LivingStreet
                | Service
                | Track
        )
    }

    /// Whether the way itself is a walking way (footway, path, steps, pedestrian street, living street).
    pub fn is_walkway(self) -> bool {
        use WayClass::*;
        matches!(self, Pedestrian | Footway | Path | Steps | LivingStreet | Track | Cycleway)
    }

    /// Whether a street of this class has sidewalks people may use unless tagged otherwise (`sidewalk=no`,
    /// `foot=no`). Motorways and trunk roads do not (OSM: foot access is not implied on them).
    pub fn has_sidewalks_by_default(self) -> bool {
        use WayClass::*;
        matches!(self, Primary | Secondary | Tertiary | Unclassified | Residential | Service)
    }

    /// Rank for choosing the class of a way tagged with several (the most important wins).
    fn rank(self) -> u8 {
        self as u8
    }
}

/// Building use from `building=*`, `amenity=*` and `shop=*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)] // the variants name the uses; `from_tags` lists which tags map to each
pub enum BuildingUse {
    Residential,
    Office,
    Retail,
    Industrial,
    Education,
    Health,
    Public,
    Hospitality,
    Parking,
    Other,
    /// No use tag (`building=yes`, or a source without use attributes such as Overture footprints).
    Unknown,
}

impl BuildingUse {
    /// Use from the tags of a building (`building`, then `amenity`, `shop`, `office`, `tourism` refine it).
    pub fn from_tags(
        building: Option<&str>,
        amenity: Option<&str>,
        shop: Option<&str>,
        office: Option<&str>,
        tourism: Option<&str>,
    ) -> BuildingUse {
        use BuildingUse::*;
        if let Some(a) = amenity {
            match a {
                "school" | "university" | "college" | "kindergarten" | "library" => return Education,
                "hospital" | "clinic" | "doctors" | "pharmacy" | "nursing_home" => return Health,
                "townhall" | "police" | "fire_station" | "courthouse" | "place_of_worship" | "community_centre"
                | "post_office" => return Public,
                "restaurant" | "cafe" | "bar" | "pub" | "fast_food" => return Hospitality,
                "parking" => return Parking,
                _ => {}
            }
        }
        if shop.is_some() {
            return Retail;
        }
        if office.is_some() {
            return Office;
        }
        if matches!(tourism, Some("hotel" | "hostel" | "guest_house" | "apartment")) {
            return Hospitality;
        }
        match building.unwrap_or("yes") {
            "residential" | "apartments" | "house" | "detached" | "semidetached_house" | "terrace" | "dormitory"
            | "bungalow" | "farm" | "houseboat" | "cabin" => Residential,
            "commercial" | "office" => Office,
            "retail" | "supermarket" | "kiosk" | "shop" => Retail,
            "industrial" | "warehouse" | "factory" | "manufacture" | "storage_tank" => Industrial,
            "school" | "university" | "college" | "kindergarten" => Education,
            "hospital" | "clinic" => Health,
            "public" | "civic" | "government" | "church" | "cathedral" | "chapel" | "mosque" | "temple"
            | "synagogue" | "train_station" | "transportation" | "fire_station" | "sports_hall" | "stadium" => Public,
            "hotel" => Hospitality,
            "parking" | "garage" | "garages" | "carport" => Parking,
            "yes" | "" => Unknown,
            _ => Other,
        }
    }
}

/// Defaults used when tags are missing. Each value has a unit and a source; scenarios override them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagDefaults {
    /// Storey height (m) to turn `building:levels` into a height and a height into floors. 3.0 m is the
    /// residential floor-to-floor height of the CTBUH Height Calculator (3.1 m) rounded, the common GIS choice.
    pub storey_height_m: f32,
    /// Floors assumed for a building with neither `height` nor `building:levels`. 3 floors: the median of
    /// the Monaco buildings that carry `building:levels` is higher, but most untagged buildings are small;
    /// flagged in the import report so a planner sees how many buildings rely on it.
    pub default_levels: f32,
    /// Walking speed (m/s) on footpaths: 1.34 m/s, the mean free-flow walking speed (HCM 2010, ch. 23 uses
    /// 1.2 m/s for design; 1.34 m/s is the field mean of Fruin 1971 and Weidmann 1993).
    pub walk_speed_mps: f32,
    /// Factor on walking speed on steps (0.5: Fruin 1971 gives about 0.5–0.6 of level speed upward).
    pub steps_speed_factor: f32,
    /// Width of a traffic lane (m), for a road's width from its lanes (flooded streets, crossings): 3.5 m, a
    /// common urban lane width (EU TEN-T design).
    pub lane_width_m: f32,
}

impl Default for TagDefaults {
    fn default() -> Self {
        TagDefaults {
            storey_height_m: 3.0,
            default_levels: 3.0,
            walk_speed_mps: 1.34,
            steps_speed_factor: 0.5,
            lane_width_m: 3.5,
        }
    }
}

/// Speed limit (km/h) assumed for an untagged road of this class: typical urban limits in Europe as listed
/// in the OSM wiki page "Default speed limits" (urban 50 km/h; residential zones 30; living streets 20 as in
/// Spain, France and Andorra; service and tracks 20), motorway and trunk at common urban-edge limits.
pub fn default_speed_kmh(class: WayClass) -> f32 {
    use WayClass::*;
    match class {
        Motorway => 110.0,
        Trunk => 80.0,
        Primary | Secondary | Tertiary => 50.0,
        Unclassified => 40.0,
        Residential => 30.0,
        LivingStreet | Service | Track => 20.0,
        Pedestrian | Footway | Path | Steps | Cycleway => 10.0,
    }
}

/// Lanes per direction assumed when `lanes` is untagged: 2 on motorways and trunk roads, 1 elsewhere
/// (OSM wiki "Key:lanes": untagged roads are assumed to have one lane per direction, motorways two).
pub fn default_lanes_per_direction(class: WayClass) -> u8 {
    match class {
        WayClass::Motorway | WayClass::Trunk => 2,
        _ => 1,
    }
}

/// Parses `maxspeed`: `50`, `50 km/h`, `30 mph`, `walk`, `none`, national codes `FR:urban`, `xx:zone30`,
/// `ES:living_street`. Returns km/h, or `None` when unparseable (the class default is then used).
pub fn parse_maxspeed_kmh(value: &str) -> Option<f32> {
    let v = value.trim().to_ascii_lowercase();
    let v = v.split(';').next()?.trim().to_string();
    if let Some(mph) = v.strip_suffix("mph") {
        return mph.trim().parse::<f32>().ok().filter(|s| *s > 0.0).map(|s| s * 1.609_344);
    }
    if let Some(kmh) = v.strip_suffix("km/h").or_else(|| v.strip_suffix("kmh")) {
        return kmh.trim().parse::<f32>().ok().filter(|s| *s > 0.0);
    }
    if let Ok(s) = v.parse::<f32>() {
        return (s > 0.0 && s.is_finite()).then_some(s);
    }
    match v.as_str() {
        "walk" => return Some(7.0),
        "none" => return Some(130.0),
        _ => {}
    }
    let zone = v.split(':').nth(1)?;
    match zone {
        "urban" => Some(50.0),
        "rural" => Some(90.0),
        "living_street" => Some(20.0),
        "motorway" => Some(120.0),
        z => z.strip_prefix("zone").and_then(|n| n.parse::<f32>().ok()),
    }
}

/// The most important class among a `highway` value list (OSMnx merges ways and lists several).
pub fn best_class<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<WayClass> {
    values.into_iter().filter_map(WayClass::from_highway).min_by_key(|c| c.rank())
}

/// Parses a lane count (`2`, `2;3` takes the first, `1.5` rounds down); `None` if absent or nonsense.
pub fn parse_lanes(value: &str) -> Option<u8> {
    let first = value.split(';').next()?.trim();
    let n = first.parse::<f32>().ok()?;
    (1.0..=16.0).contains(&n).then_some(n as u8)
}

/// Lanes per direction from `lanes`, `lanes:forward`, `lanes:backward` for a way that is one-way or not.
/// Returns (forward, backward); backward is 0 on one-way roads.
pub fn lanes_per_direction(
    class: WayClass,
    oneway: bool,
    lanes: Option<u8>,
    forward: Option<u8>,
    backward: Option<u8>,
) -> (u8, u8) {
    let default = default_lanes_per_direction(class);
    if oneway {
        return (forward.or(lanes).unwrap_or(default).max(1), 0);
    }
    match (forward, backward, lanes) {
        (Some(f), Some(b), _) => (f.max(1), b.max(1)),
        (Some(f), None, Some(l)) => (f.max(1), l.saturating_sub(f).max(1)),
        (None, Some(b), Some(l)) => (l.saturating_sub(b).max(1), b.max(1)),
        (_, _, Some(l)) => ((l / 2).max(1), (l - l / 2).max(1)),
        _ => (default, default),
    }
}

/// Whether a way is a roundabout's carriageway, where circulating traffic has priority (OSM wiki
/// "Tag:junction=roundabout"). `junction=circular` loops are one-way too but carry no such priority.
pub fn is_roundabout(junction: Option<&str>) -> bool {
    junction == Some("roundabout")
}

/// One-way interpretation: `yes`/`true`/`1` forward, `-1`/`reverse` backward, roundabouts and motorways
/// one-way by default (OSM wiki "Key:oneway": implied on `junction=roundabout` and `highway=motorway`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oneway {
    /// Two-way.
    No,
    /// One-way along the node order.
    Forward,
    /// One-way against the node order (`oneway=-1`).
    Backward,
}

/// Interprets `oneway`, `junction` and the class.
pub fn parse_oneway(oneway: Option<&str>, junction: Option<&str>, class: WayClass) -> Oneway {
    match oneway.map(str::trim) {
        Some("yes" | "true" | "1") => Oneway::Forward,
        Some("-1" | "reverse") => Oneway::Backward,
        Some("no" | "false" | "0") => Oneway::No,
        _ if matches!(junction, Some("roundabout" | "circular")) => Oneway::Forward,
        _ if class == WayClass::Motorway => Oneway::Forward,
        _ => Oneway::No,
    }
}

/// Parses a height (`12`, `12.5 m`, `40'`/`40 ft`); metres, `None` if unparseable or not positive.
pub fn parse_height_m(value: &str) -> Option<f32> {
    let v = value.trim().to_ascii_lowercase();
    let (num, factor) = if let Some(ft) = v.strip_suffix("ft").or_else(|| v.strip_suffix('\'')) {
        (ft.trim().to_string(), 0.3048)
    } else {
        (v.trim_end_matches('m').trim().to_string(), 1.0)
    };
    let h = num.replace(',', ".").parse::<f32>().ok()? * factor;
    (h > 0.0 && h < 1000.0).then_some(h)
}

/// Whether `access`/`motor_vehicle`/`vehicle` tags forbid cars (private roads stay: residents drive them).
pub fn motor_access_denied(access: Option<&str>, motor_vehicle: Option<&str>) -> bool {
    let denied = |v: Option<&str>| matches!(v, Some("no" | "agricultural" | "forestry" | "emergency"));
    match motor_vehicle {
        Some(_) => denied(motor_vehicle),
        None => denied(access),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxspeed_forms() {
        assert_eq!(parse_maxspeed_kmh("50"), Some(50.0));
        assert_eq!(parse_maxspeed_kmh("30 mph").map(|v| v.round()), Some(48.0));
        assert_eq!(parse_maxspeed_kmh("FR:urban"), Some(50.0));
        assert_eq!(parse_maxspeed_kmh("DE:zone30"), Some(30.0));
        assert_eq!(parse_maxspeed_kmh("signals"), None);
        assert_eq!(parse_maxspeed_kmh("-5"), None);
    }

    #[test]
    fn lanes_split_by_direction() {
        assert_eq!(lanes_per_direction(WayClass::Primary, false, Some(4), None, None), (2, 2));
        assert_eq!(lanes_per_direction(WayClass::Primary, false, Some(3), Some(2), None), (2, 1));
        assert_eq!(lanes_per_direction(WayClass::Primary, true, Some(3), None, None), (3, 0));
        assert_eq!(lanes_per_direction(WayClass::Trunk, false, None, None, None), (2, 2));
        assert_eq!(lanes_per_direction(WayClass::Residential, false, Some(1), None, None), (1, 1));
    }

    #[test]
    fn classes_uses_and_heights() {
        assert_eq!(best_class(["footway", "residential"]), Some(WayClass::Residential));
        assert_eq!(WayClass::from_highway("primary_link"), Some(WayClass::Primary));
        assert_eq!(WayClass::from_highway("proposed"), None);
        assert_eq!(BuildingUse::from_tags(Some("yes"), None, Some("bakery"), None, None), BuildingUse::Retail);
        assert_eq!(BuildingUse::from_tags(Some("apartments"), None, None, None, None), BuildingUse::Residential);
        assert_eq!(BuildingUse::from_tags(Some("yes"), None, None, None, None), BuildingUse::Unknown);
        assert_eq!(parse_height_m("12.5 m"), Some(12.5));
        assert_eq!(parse_height_m("10 ft").map(|h| (h * 100.0).round()), Some(305.0));
        assert_eq!(parse_height_m("tall"), None);
        assert_eq!(parse_oneway(None, Some("roundabout"), WayClass::Tertiary), Oneway::Forward);
        assert_eq!(parse_oneway(Some("-1"), None, WayClass::Tertiary), Oneway::Backward);
    }
}
