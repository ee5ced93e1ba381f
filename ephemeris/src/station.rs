//! Ground stations: a named site on the WGS-84 ellipsoid with an elevation mask, in the calibration data's JSON
//! format (`name`, `lat_deg`, `lon_deg`, `alt_m`, `min_elevation_deg`).

use crate::frames::{Geodetic, Vec3, norm};
use serde::{Deserialize, Serialize};

/// A ground station as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Station {
    /// Unique name.
    pub name: String,
    /// Geodetic latitude, degrees north.
    pub lat_deg: f64,
    /// Longitude, degrees east.
    pub lon_deg: f64,
    /// Height above the WGS-84 ellipsoid, metres.
    pub alt_m: f64,
    /// Lowest elevation at which the station can hold a link, degrees.
    pub min_elevation_deg: f64,
}

/// Why a station list was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StationError {
    /// The document is not a JSON array of stations.
    #[error("stations: {0}")]
    Json(String),
    /// A station has a value out of range.
    #[error("station {index} ({name}): {problem}")]
    Invalid {
        /// 0-based position in the list.
        index: usize,
        /// The station's name.
        name: String,
        /// What is out of range.
        problem: String,
    },
}

impl Station {
    /// Parses and validates a JSON array of stations.
    pub fn parse_list(text: &str) -> Result<Vec<Station>, StationError> {
        let list: Vec<Station> =
            serde_json::from_str(text).map_err(|e| StationError::Json(e.to_string()))?;
        let mut seen = std::collections::BTreeSet::new();
        for (index, s) in list.iter().enumerate() {
            let bad = |problem: String| StationError::Invalid {
                index,
                name: s.name.clone(),
                problem,
            };
            if !(-90.0..=90.0).contains(&s.lat_deg) {
                return Err(bad(format!("lat_deg {} is outside [-90, 90]", s.lat_deg)));
            }
            if !(-180.0..=360.0).contains(&s.lon_deg) {
                return Err(bad(format!("lon_deg {} is outside [-180, 360]", s.lon_deg)));
            }
            if !(-90.0..90.0).contains(&s.min_elevation_deg) {
                return Err(bad(format!(
                    "min_elevation_deg {} is outside [-90, 90)",
                    s.min_elevation_deg
                )));
            }
            if !s.alt_m.is_finite() || s.alt_m.abs() > 100_000.0 {
                return Err(bad(format!("alt_m {} is not a plausible height", s.alt_m)));
            }
            if !seen.insert(s.name.as_str()) {
                return Err(bad("duplicate name".into()));
            }
        }
        Ok(list)
    }

    /// The station's site.
    pub fn geodetic(&self) -> Geodetic {
        Geodetic {
            lat_deg: self.lat_deg,
            lon_deg: self.lon_deg,
            alt_km: self.alt_m / 1000.0,
        }
    }
}

/// A station prepared for fast visibility tests: everything a search needs per sample, precomputed.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    pub ecef: Vec3,
    pub up: Vec3,
    /// Unit vector from Earth's centre to the site.
    pub radial: Vec3,
    pub radius_km: f64,
    pub sin_mask: f64,
    pub mask_rad: f64,
}

impl Site {
    pub fn new(station: &Station) -> Site {
        let g = station.geodetic();
        let ecef = g.to_ecef();
        let r = norm(ecef);
        Site {
            ecef,
            up: g.up(),
            radial: [ecef[0] / r, ecef[1] / r, ecef[2] / r],
            radius_km: r,
            sin_mask: station.min_elevation_deg.to_radians().sin(),
            mask_rad: station.min_elevation_deg.to_radians(),
        }
    }

    /// sin(elevation) − sin(mask) of an Earth-fixed position: positive exactly when the satellite is above the mask.
    #[inline]
    pub fn visibility(&self, r: Vec3) -> f64 {
        let rho = [
            r[0] - self.ecef[0],
            r[1] - self.ecef[1],
            r[2] - self.ecef[2],
        ];
        crate::frames::dot(rho, self.up) / norm(rho) - self.sin_mask
    }

    /// Largest Earth-central angle between site and satellite at which the satellite can be above the mask,
    /// for a satellite no farther than `max_radius_km` from Earth's centre, radians.
    ///
    /// Spherical geometry with the mask lowered by half a degree, which covers the up to 0.19° between the
    /// ellipsoid normal and the radial direction.
    pub fn max_central_angle(&self, max_radius_km: f64) -> f64 {
        let el = self.mask_rad - 0.5f64.to_radians();
        let c = (self.radius_km * el.cos() / max_radius_km).clamp(-1.0, 1.0);
        (c.acos() - el).min(std::f64::consts::PI)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range_and_duplicates() {
        let bad = r#"[{"name":"A","lat_deg":91,"lon_deg":0,"alt_m":0,"min_elevation_deg":5}]"#;
        let err = Station::parse_list(bad).expect_err("latitude").to_string();
        assert!(
            err.contains("station 0 (A)") && err.contains("lat_deg"),
            "{err}"
        );
        let dup = r#"[{"name":"A","lat_deg":1,"lon_deg":0,"alt_m":0,"min_elevation_deg":5},
                     {"name":"A","lat_deg":2,"lon_deg":0,"alt_m":0,"min_elevation_deg":5}]"#;
        assert!(
            Station::parse_list(dup)
                .expect_err("dup")
                .to_string()
                .contains("duplicate")
        );
        assert!(matches!(
            Station::parse_list("{"),
            Err(StationError::Json(_))
        ));
    }
}
