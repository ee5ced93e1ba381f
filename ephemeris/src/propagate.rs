//! SGP4/SDP4 propagation of one satellite with the constants its elements were fitted with.

use crate::time::UnixSeconds;

/// Why a satellite cannot be initialised or propagated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PropagationError {
    /// The Kozai elements are out of SGP4's domain (for example an eccentricity ≥ 1).
    #[error("elements out of range: {0}")]
    Elements(String),
    /// SGP4 diverged at this time (the orbit decayed or the elements are too old for this time).
    #[error("SGP4 diverged {minutes_since_epoch:.1} min from epoch: {reason}")]
    Diverged {
        /// Minutes since the elements' epoch.
        minutes_since_epoch: f64,
        /// The propagator's message.
        reason: String,
    },
}

/// A state vector in the TEME frame (True Equator, Mean Equinox of date) as SGP4 produces it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TemeState {
    /// Position, km.
    pub position_km: [f64; 3],
    /// Velocity, km/s.
    pub velocity_km_s: [f64; 3],
}

/// A catalogued satellite ready to propagate.
#[derive(Debug, Clone)]
pub struct Satellite {
    /// Name from the catalog (the catalog number when the record has none).
    pub name: String,
    /// NORAD catalog number.
    pub norad_id: u64,
    /// The mean elements as parsed.
    pub elements: sgp4::Elements,
    /// Element epoch, Unix seconds UTC.
    pub epoch_unix: UnixSeconds,
    constants: sgp4::Constants,
}

impl Satellite {
    /// Initialises SGP4 the way the elements were fitted: WGS-72 gravity, IAU-82 sidereal time, Kozai mean motion.
    ///
    /// The `sgp4` crate's `Constants::from_elements` uses WGS-84 instead, which moves deep-space objects by up to
    /// a kilometre against every other SGP4 implementation; this matches Vallado's "improved" mode.
    pub fn new(elements: sgp4::Elements) -> Result<Satellite, PropagationError> {
        let deg = std::f64::consts::PI / 180.0;
        let orbit = sgp4::Orbit::from_kozai_elements(
            &sgp4::WGS72,
            elements.inclination * deg,
            elements.right_ascension * deg,
            elements.eccentricity,
            elements.argument_of_perigee * deg,
            elements.mean_anomaly * deg,
            elements.mean_motion * (std::f64::consts::PI / 720.0),
        )
        .map_err(|e| PropagationError::Elements(e.to_string()))?;
        let constants = sgp4::Constants::new(
            sgp4::WGS72,
            sgp4::iau_epoch_to_sidereal_time,
            elements.epoch(),
            elements.drag_term,
            orbit,
        )
        .map_err(|e| PropagationError::Elements(e.to_string()))?;
        let epoch = elements.datetime.and_utc();
        let epoch_unix = crate::time::to_unix(&epoch);
        let name = elements
            .object_name
            .clone()
            .unwrap_or_else(|| elements.norad_id.to_string());
        Ok(Satellite {
            name,
            norad_id: elements.norad_id,
            elements,
            epoch_unix,
            constants,
        })
    }

    /// Orbital period from the mean motion, minutes.
    pub fn period_min(&self) -> f64 {
        1440.0 / self.elements.mean_motion
    }

    /// Whether SGP4 uses its deep-space branch (SDP4) for this orbit: period of 225 minutes or more.
    pub fn is_deep_space(&self) -> bool {
        self.period_min() >= 225.0
    }

    /// TEME state at a UTC time.
    pub fn propagate(&self, t: UnixSeconds) -> Result<TemeState, PropagationError> {
        self.propagate_minutes((t - self.epoch_unix) / 60.0)
    }

    /// TEME state at a number of minutes since the element epoch.
    pub fn propagate_minutes(&self, minutes: f64) -> Result<TemeState, PropagationError> {
        let p = self
            .constants
            .propagate(sgp4::MinutesSinceEpoch(minutes))
            .map_err(|e| PropagationError::Diverged {
                minutes_since_epoch: minutes,
                reason: e.to_string(),
            })?;
        Ok(TemeState {
            position_km: p.position,
            velocity_km_s: p.velocity,
        })
    }
}
