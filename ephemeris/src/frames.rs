//! Frames: TEME → Earth-fixed (ECEF) by the IAU-82 Greenwich mean sidereal time, WGS-84 geodetic coordinates,
//! and topocentric look angles from a station.
//!
//! Earth-fixed here is TEME rotated by GMST82 about the z axis, with no polar motion, which is how SGP4's output is
//! conventionally brought to the ground. GMST is evaluated at UTC: ignoring UT1−UTC (under 0.9 s by definition)
//! moves pass edges by at most a few hundredths of a second.

use crate::time::{UnixSeconds, julian_years_since_j2000};

/// WGS-84 equatorial radius, km.
pub const WGS84_A_KM: f64 = 6378.137;
/// WGS-84 flattening.
pub const WGS84_F: f64 = 1.0 / 298.257_223_563;
/// Earth's rotation rate used for Earth-fixed velocities, rad/s (GMST82 rate).
pub const EARTH_ROTATION_RAD_S: f64 = 7.292_115_146_706_979e-5;

/// A three-component vector, km or km/s.
pub type Vec3 = [f64; 3];

/// Dot product.
#[inline]
pub fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// Difference a − b.
#[inline]
pub fn sub(a: Vec3, b: Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// Euclidean norm.
#[inline]
pub fn norm(a: Vec3) -> f64 {
    dot(a, a).sqrt()
}

/// Greenwich mean sidereal time (IAU-82) at a UTC instant, radians in [0, 2π).
pub fn gmst_rad(t: UnixSeconds) -> f64 {
    sgp4::iau_epoch_to_sidereal_time(julian_years_since_j2000(t))
}

/// Rotates a TEME position into Earth-fixed axes given sin and cos of GMST.
#[inline]
pub fn teme_to_ecef_position(r: Vec3, (sin_g, cos_g): (f64, f64)) -> Vec3 {
    [
        cos_g * r[0] + sin_g * r[1],
        -sin_g * r[0] + cos_g * r[1],
        r[2],
    ]
}

/// Rotates a TEME state into an Earth-fixed position and velocity at a UTC instant.
pub fn teme_to_ecef(t: UnixSeconds, r: Vec3, v: Vec3) -> (Vec3, Vec3) {
    let sc = gmst_rad(t).sin_cos();
    let r_ecef = teme_to_ecef_position(r, sc);
    let v_rot = teme_to_ecef_position(v, sc);
    // The Earth-fixed velocity loses the frame's rotation: v_ecef = R v − ω × r_ecef.
    let w = EARTH_ROTATION_RAD_S;
    (
        r_ecef,
        [v_rot[0] + w * r_ecef[1], v_rot[1] - w * r_ecef[0], v_rot[2]],
    )
}

/// A point on or above the WGS-84 ellipsoid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geodetic {
    /// Geodetic latitude, degrees north.
    pub lat_deg: f64,
    /// Longitude, degrees east, in (−180, 180].
    pub lon_deg: f64,
    /// Height above the ellipsoid, km.
    pub alt_km: f64,
}

impl Geodetic {
    /// Earth-fixed position of this point, km.
    pub fn to_ecef(&self) -> Vec3 {
        let (sl, cl) = self.lat_deg.to_radians().sin_cos();
        let (so, co) = self.lon_deg.to_radians().sin_cos();
        let e2 = WGS84_F * (2.0 - WGS84_F);
        let n = WGS84_A_KM / (1.0 - e2 * sl * sl).sqrt();
        [
            (n + self.alt_km) * cl * co,
            (n + self.alt_km) * cl * so,
            (n * (1.0 - e2) + self.alt_km) * sl,
        ]
    }

    /// Geodetic coordinates of an Earth-fixed position (Bowring's iteration; converges to < 1e-9° in 3 steps).
    pub fn from_ecef(r: Vec3) -> Geodetic {
        let e2 = WGS84_F * (2.0 - WGS84_F);
        let p = (r[0] * r[0] + r[1] * r[1]).sqrt();
        let lon = r[1].atan2(r[0]);
        let mut lat = r[2].atan2(p * (1.0 - e2));
        let mut alt = 0.0;
        for _ in 0..6 {
            let s = lat.sin();
            let n = WGS84_A_KM / (1.0 - e2 * s * s).sqrt();
            alt = if lat.cos().abs() > 1e-10 {
                p / lat.cos() - n
            } else {
                r[2].abs() - n * (1.0 - e2)
            };
            lat = r[2].atan2(p * (1.0 - e2 * n / (n + alt)));
        }
        Geodetic {
            lat_deg: lat.to_degrees(),
            lon_deg: lon.to_degrees(),
            alt_km: alt,
        }
    }

    /// Unit vector of the ellipsoid normal (local "up") at this point, Earth-fixed.
    pub fn up(&self) -> Vec3 {
        let (sl, cl) = self.lat_deg.to_radians().sin_cos();
        let (so, co) = self.lon_deg.to_radians().sin_cos();
        [cl * co, cl * so, sl]
    }
}

/// Where a satellite appears from a station.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LookAngles {
    /// Azimuth from north through east, degrees in [0, 360).
    pub azimuth_deg: f64,
    /// Geometric elevation above the ellipsoid horizon (no refraction), degrees.
    pub elevation_deg: f64,
    /// Slant range, km.
    pub range_km: f64,
    /// Rate of change of the range, km/s (positive when receding).
    pub range_rate_km_s: f64,
}

/// Look angles of an Earth-fixed state from a geodetic site.
pub fn look_angles(site: &Geodetic, r_ecef: Vec3, v_ecef: Vec3) -> LookAngles {
    let rho = sub(r_ecef, site.to_ecef());
    let range = norm(rho);
    let (sl, cl) = site.lat_deg.to_radians().sin_cos();
    let (so, co) = site.lon_deg.to_radians().sin_cos();
    let east = [-so, co, 0.0];
    let north = [-sl * co, -sl * so, cl];
    let up = [cl * co, cl * so, sl];
    let (e, n, u) = (dot(rho, east), dot(rho, north), dot(rho, up));
    let azimuth = e.atan2(n).to_degrees().rem_euclid(360.0);
    let elevation = (u / range).clamp(-1.0, 1.0).asin().to_degrees();
    LookAngles {
        azimuth_deg: azimuth,
        elevation_deg: elevation,
        range_km: range,
        range_rate_km_s: dot(rho, v_ecef) / range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geodetic_round_trip() {
        for &(lat, lon, alt) in &[
            (78.2297, 15.4078, 0.5),
            (-77.8391, 166.6671, 0.2),
            (0.0, -179.0, 550.0),
        ] {
            let g = Geodetic {
                lat_deg: lat,
                lon_deg: lon,
                alt_km: alt,
            };
            let back = Geodetic::from_ecef(g.to_ecef());
            assert!((back.lat_deg - lat).abs() < 1e-9);
            assert!((back.lon_deg - lon).abs() < 1e-9);
            assert!((back.alt_km - alt).abs() < 1e-6);
        }
    }

    #[test]
    fn pole_is_handled() {
        let g = Geodetic::from_ecef([0.0, 0.0, 6_356.752_314_2 + 1.0]);
        assert!((g.lat_deg - 90.0).abs() < 1e-9);
        assert!((g.alt_km - 1.0).abs() < 1e-6);
    }

    #[test]
    fn zenith_and_horizon() {
        let site = Geodetic {
            lat_deg: 10.0,
            lon_deg: 20.0,
            alt_km: 0.0,
        };
        let up = site.up();
        let over = site.to_ecef();
        let r = [
            over[0] + 500.0 * up[0],
            over[1] + 500.0 * up[1],
            over[2] + 500.0 * up[2],
        ];
        let look = look_angles(&site, r, [0.0; 3]);
        assert!((look.elevation_deg - 90.0).abs() < 1e-9);
        assert!((look.range_km - 500.0).abs() < 1e-9);
    }
}
