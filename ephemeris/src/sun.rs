//! Analytic Sun position and the Earth-shadow geometry (conical umbra and penumbra, and the Sun-centre line).

use crate::frames::{Vec3, dot, norm, sub};
use crate::time::{UnixSeconds, julian_centuries_tt};

/// Astronomical unit, km.
pub const AU_KM: f64 = 149_597_870.7;
/// Radius of the Sun's photosphere, km.
pub const SUN_RADIUS_KM: f64 = 696_000.0;
/// Radius of the spherical Earth that casts the shadow, km (the value the calibration reference uses).
pub const SHADOW_EARTH_RADIUS_KM: f64 = 6378.1366;

/// Geocentric Sun position, km, in the mean equator and equinox of date (which TEME matches to a few arcseconds).
///
/// The Astronomical Almanac's low-precision formula: about 0.01° over 1950–2050, enough to place shadow edges of
/// a LEO satellite within a fraction of a second.
pub fn sun_position_km(t: UnixSeconds) -> Vec3 {
    let c = julian_centuries_tt(t);
    let mean_longitude = (280.460 + 36_000.771 * c).to_radians();
    let anomaly = (357.529_109_2 + 35_999.050_34 * c).to_radians();
    let ecliptic_longitude = mean_longitude
        + (1.914_666_471f64.to_radians()) * anomaly.sin()
        + (0.019_994_643f64.to_radians()) * (2.0 * anomaly).sin();
    let distance_au =
        1.000_140_612 - 0.016_708_617 * anomaly.cos() - 0.000_139_589 * (2.0 * anomaly).cos();
    let obliquity = (23.439_291 - 0.013_004_2 * c).to_radians();
    let (sl, cl) = ecliptic_longitude.sin_cos();
    let r = distance_au * AU_KM;
    [r * cl, r * obliquity.cos() * sl, r * obliquity.sin() * sl]
}

/// The three angles that decide how much of the Sun a satellite sees, as seen from the satellite, radians.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowAngles {
    /// Angle between the directions to the Earth's centre and to the Sun's centre.
    pub separation: f64,
    /// Apparent angular radius of the Earth.
    pub earth_radius: f64,
    /// Apparent angular radius of the Sun.
    pub sun_radius: f64,
}

impl ShadowAngles {
    /// Computes the angles for a satellite and the Sun, both geocentric in the same frame, km.
    pub fn new(sat: Vec3, sun: Vec3) -> ShadowAngles {
        let to_earth = [-sat[0], -sat[1], -sat[2]];
        let to_sun = sub(sun, sat);
        let cross = [
            to_earth[1] * to_sun[2] - to_earth[2] * to_sun[1],
            to_earth[2] * to_sun[0] - to_earth[0] * to_sun[2],
            to_earth[0] * to_sun[1] - to_earth[1] * to_sun[0],
        ];
        let r = norm(sat);
        ShadowAngles {
            separation: norm(cross).atan2(dot(to_earth, to_sun)),
            earth_radius: (SHADOW_EARTH_RADIUS_KM / r).min(1.0).asin(),
            sun_radius: (SUN_RADIUS_KM / norm(to_sun)).min(1.0).asin(),
        }
    }

    /// Positive while the line to the Sun's centre passes through the Earth: the reference eclipse boundary.
    pub fn centre_depth(&self) -> f64 {
        self.earth_radius - self.separation
    }

    /// Positive inside the umbra (no part of the Sun visible).
    pub fn umbra_depth(&self) -> f64 {
        self.earth_radius - self.sun_radius - self.separation
    }

    /// Positive inside the penumbra or the umbra (some part of the Sun hidden).
    pub fn penumbra_depth(&self) -> f64 {
        self.earth_radius + self.sun_radius - self.separation
    }

    /// Fraction of the solar disc visible, 0 in umbra, 1 in full sunlight (area of two overlapping discs).
    pub fn sunlit_fraction(&self) -> f64 {
        let (a, b, c) = (self.sun_radius, self.earth_radius, self.separation);
        if c >= a + b {
            return 1.0;
        }
        if c <= b - a {
            return 0.0;
        }
        if c <= a - b {
            // Earth's disc lies wholly inside the Sun's (annular): only possible far from Earth.
            return 1.0 - (b * b) / (a * a);
        }
        let x = (c * c + a * a - b * b) / (2.0 * c);
        let y = (a * a - x * x).max(0.0).sqrt();
        let overlap = a * a * (x / a).clamp(-1.0, 1.0).acos()
            + b * b * ((c - x) / b).clamp(-1.0, 1.0).acos()
            - c * y;
        1.0 - overlap / (std::f64::consts::PI * a * a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sun_near_june_solstice_is_at_max_declination() {
        let t = crate::time::to_unix(
            &crate::time::parse_rfc3339("2026-06-21T08:24:00Z").expect("valid"),
        );
        let s = sun_position_km(t);
        let dec = (s[2] / norm(s)).asin().to_degrees();
        assert!((dec - 23.43).abs() < 0.02, "declination {dec}");
        assert!((norm(s) / AU_KM - 1.0163).abs() < 0.001);
    }

    #[test]
    fn shadow_states_are_nested() {
        let sun = [AU_KM, 0.0, 0.0];
        let behind = ShadowAngles::new([-7000.0, 0.0, 0.0], sun);
        assert!(behind.umbra_depth() > 0.0 && behind.sunlit_fraction() == 0.0);
        let beside = ShadowAngles::new([0.0, 7000.0, 0.0], sun);
        assert!(beside.penumbra_depth() < 0.0 && beside.sunlit_fraction() == 1.0);
        // Just at the Sun-centre line half the disc is hidden (to first order).
        let b = (SHADOW_EARTH_RADIUS_KM / 7000.0f64).asin();
        let edge = [-7000.0 * b.cos(), 7000.0 * b.sin(), 0.0];
        let angles = ShadowAngles::new(edge, sun);
        assert!(angles.centre_depth().abs() < 1e-4);
        assert!(
            (angles.sunlit_fraction() - 0.5).abs() < 0.05,
            "{}",
            angles.sunlit_fraction()
        );
    }
}
