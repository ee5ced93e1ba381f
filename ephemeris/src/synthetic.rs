//! Synthetic constellations and station networks, deterministic from their parameters: for scenarios, the digital
//! twin and benchmarks, where a real catalog of thousands of satellites is not at hand.

use crate::propagate::{PropagationError, Satellite};
use crate::station::Station;
use crate::time::UnixSeconds;

/// One Walker-delta shell: `planes` × `per_plane` satellites on circular orbits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WalkerShell {
    /// Altitude above a 6378.135 km sphere, km.
    pub altitude_km: f64,
    /// Inclination, degrees.
    pub inclination_deg: f64,
    /// Number of orbital planes, spread over 360° of right ascension.
    pub planes: usize,
    /// Satellites per plane, evenly phased.
    pub per_plane: usize,
    /// Walker phasing factor F: satellites in adjacent planes are offset by F·360°/(planes·per_plane).
    pub phasing: usize,
}

/// Kozai mean motion (revolutions per day) of a circular orbit at an altitude, from Kepler's third law (WGS-72 μ).
pub fn mean_motion_rev_per_day(altitude_km: f64) -> f64 {
    let a = 6378.135 + altitude_km;
    let n_rad_s = (398_600.8 / (a * a * a)).sqrt();
    n_rad_s * 86_400.0 / std::f64::consts::TAU
}

/// Satellites of Walker shells with elements at `epoch`, numbered from `first_norad_id` in shell, plane, slot order.
pub fn walker(
    shells: &[WalkerShell],
    epoch: UnixSeconds,
    first_norad_id: u64,
) -> Result<Vec<Satellite>, PropagationError> {
    let datetime = crate::time::from_unix(epoch).naive_utc();
    let mut out = Vec::new();
    let mut id = first_norad_id;
    for (s, shell) in shells.iter().enumerate() {
        let total = (shell.planes * shell.per_plane).max(1);
        for p in 0..shell.planes {
            for k in 0..shell.per_plane {
                let raan = 360.0 * p as f64 / shell.planes as f64;
                let anomaly = (360.0 * k as f64 / shell.per_plane as f64
                    + 360.0 * (shell.phasing * p) as f64 / total as f64)
                    % 360.0;
                let elements = sgp4::Elements {
                    object_name: Some(format!("SHELL{s}-P{p:02}-S{k:02}")),
                    international_designator: None,
                    norad_id: id,
                    classification: sgp4::Classification::Unclassified,
                    datetime,
                    mean_motion_dot: 0.0,
                    mean_motion_ddot: 0.0,
                    drag_term: 0.0,
                    element_set_number: 999,
                    inclination: shell.inclination_deg,
                    right_ascension: raan,
                    eccentricity: 0.0001,
                    argument_of_perigee: 0.0,
                    mean_anomaly: anomaly,
                    mean_motion: mean_motion_rev_per_day(shell.altitude_km),
                    revolution_number: 0,
                    ephemeris_type: 0,
                };
                out.push(Satellite::new(elements)?);
                id += 1;
            }
        }
    }
    Ok(out)
}

/// `count` stations spread evenly over the globe between ±`max_lat_deg` (a Fibonacci lattice), masks 5° or 10°.
pub fn station_network(count: usize, max_lat_deg: f64) -> Vec<Station> {
    let golden = std::f64::consts::PI * (3.0 - 5f64.sqrt());
    let z_max = max_lat_deg.to_radians().sin();
    (0..count)
        .map(|i| {
            let z = z_max * (1.0 - 2.0 * (i as f64 + 0.5) / count as f64);
            let lon = (golden * i as f64).to_degrees().rem_euclid(360.0) - 180.0;
            Station {
                name: format!("GS{i:03}"),
                lat_deg: z.asin().to_degrees(),
                lon_deg: lon,
                alt_m: 100.0 + (i % 7) as f64 * 150.0,
                min_elevation_deg: if i % 3 == 0 { 10.0 } else { 5.0 },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walker_shell_has_the_asked_altitude_and_count() {
        let shell = WalkerShell {
            altitude_km: 550.0,
            inclination_deg: 53.0,
            planes: 4,
            per_plane: 5,
            phasing: 1,
        };
        let sats = walker(&[shell], 1.78e9, 90_000).expect("valid");
        assert_eq!(sats.len(), 20);
        assert_eq!(sats[19].norad_id, 90_019);
        let s = sats[0].propagate(1.78e9 + 600.0).expect("propagates");
        let alt = crate::frames::norm(s.position_km) - 6378.135;
        assert!((alt - 550.0).abs() < 25.0, "altitude {alt}");
        assert!((sats[0].period_min() - 95.6).abs() < 0.3);
    }

    #[test]
    fn station_network_is_valid() {
        let stations = station_network(100, 70.0);
        let text = serde_json::to_string(&stations).expect("serialises");
        assert_eq!(Station::parse_list(&text).expect("valid").len(), 100);
        assert!(stations.iter().all(|s| s.lat_deg.abs() <= 70.0));
    }
}
