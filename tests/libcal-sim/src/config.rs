//! Simulator settings: what the LibCal facts leave open ([I] in the doc) is a knob here.

use std::net::SocketAddr;
use std::time::Duration;

use chrono_tz::Tz;
use rand::Rng;
use rand::distributions::Alphanumeric;

/// Listen address of the binary when `LIBCAL_SIM_LISTEN` is not set.
pub const DEFAULT_BIN_LISTEN: &str = "127.0.0.1:4020";

/// What `/space/bookings` does with a `limit` above the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// 400 `{"error": …}` (UCL's validation, copied from the vendor docs).
    Refuse,
    /// Serve `max_limit` rows instead.
    Clamp,
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; `127.0.0.1:0` picks a free port (tests).
    pub listen: SocketAddr,
    /// The one API application the simulator knows (real ids are small integers).
    pub client_id: String,
    pub client_secret: String,
    /// Space-separated scope codes returned with a token (doc: e.g. `sp_r sp_w`).
    pub scope: String,
    /// Token lifetime (doc: 3600 s).
    pub token_ttl: Duration,
    /// Instance zone: decides "today", the default `date` of `/space/bookings`.
    pub time_zone: Tz,
    /// Largest `days` of `/space/bookings` (doc: 365); larger is refused.
    pub max_days: u32,
    /// Largest `limit` of `/space/bookings` (doc: 500).
    pub max_limit: u32,
    pub over_limit: OverLimit,
    /// Whether `Mediated Denied` rows are served (doc: they seem not to be, so off).
    pub show_denied: bool,
    /// Whether a `date` before today is read as today (UCL: "Dates in the past are ignored"
    /// [T]; PITT relies on them being honoured [T]): off honours them.
    pub ignore_past_dates: bool,
}

impl Default for SimConfig {
    /// Test settings: a free port and a fresh random secret, never a committed one.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            client_id: "100".to_owned(),
            client_secret: random_secret(),
            scope: "sp_r".to_owned(),
            token_ttl: Duration::from_secs(3600),
            time_zone: chrono_tz::America::New_York,
            max_days: 365,
            max_limit: 500,
            over_limit: OverLimit::Refuse,
            show_denied: false,
            ignore_past_dates: false,
        }
    }
}

/// 32 characters, like the real secrets' 32 hex digits.
pub fn random_secret() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// The binary's settings: the simulator's plus whether to load the demo catalogue.
pub struct BinConfig {
    pub sim: SimConfig,
    pub demo: bool,
}

impl BinConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let invalid = |variable: &'static str, problem: String| ConfigError { variable, problem };
        let parse = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            var(name)
                .map(|v| v.trim().parse::<u64>())
                .transpose()
                .map_err(|e| invalid(name, e.to_string()))
        };
        let flag = |name: &'static str| -> Result<bool, ConfigError> {
            match var(name).as_deref().map(str::trim) {
                None | Some("0" | "false") => Ok(false),
                Some("1" | "true") => Ok(true),
                Some(other) => Err(invalid(name, format!("{other:?} is not 0/1"))),
            }
        };
        let defaults = SimConfig::default();
        let demo = flag("LIBCAL_SIM_DEMO")?;
        let client_secret = match var("LIBCAL_SIM_CLIENT_SECRET") {
            Some(secret) => secret,
            None if demo => defaults.client_secret.clone(),
            None => {
                return Err(invalid(
                    "LIBCAL_SIM_CLIENT_SECRET",
                    "required (or LIBCAL_SIM_DEMO=1 for a random one)".to_owned(),
                ));
            }
        };
        let listen = var("LIBCAL_SIM_LISTEN")
            .unwrap_or_else(|| DEFAULT_BIN_LISTEN.to_owned())
            .parse()
            .map_err(|e| invalid("LIBCAL_SIM_LISTEN", format!("{e}")))?;
        let time_zone = match var("LIBCAL_SIM_TIME_ZONE") {
            Some(zone) => zone
                .trim()
                .parse()
                .map_err(|e| invalid("LIBCAL_SIM_TIME_ZONE", format!("{e}")))?,
            None => defaults.time_zone,
        };
        let small = |name: &'static str, default: u32| -> Result<u32, ConfigError> {
            parse(name)?.map_or(Ok(default), |n| {
                u32::try_from(n).map_err(|e| invalid(name, e.to_string()))
            })
        };
        let over_limit = match var("LIBCAL_SIM_OVER_LIMIT").as_deref().map(str::trim) {
            None | Some("refuse") => OverLimit::Refuse,
            Some("clamp") => OverLimit::Clamp,
            Some(other) => {
                let problem = format!("{other:?} is not refuse/clamp");
                return Err(invalid("LIBCAL_SIM_OVER_LIMIT", problem));
            }
        };
        let sim = SimConfig {
            listen,
            client_id: var("LIBCAL_SIM_CLIENT_ID").unwrap_or(defaults.client_id),
            client_secret,
            scope: var("LIBCAL_SIM_SCOPE").unwrap_or(defaults.scope),
            token_ttl: parse("LIBCAL_SIM_TOKEN_TTL_SECS")?
                .map_or(defaults.token_ttl, Duration::from_secs),
            time_zone,
            max_days: small("LIBCAL_SIM_MAX_DAYS", defaults.max_days)?,
            max_limit: small("LIBCAL_SIM_MAX_LIMIT", defaults.max_limit)?,
            over_limit,
            show_denied: flag("LIBCAL_SIM_SHOW_DENIED")?,
            ignore_past_dates: flag("LIBCAL_SIM_IGNORE_PAST_DATES")?,
        };
        Ok(Self { sim, demo })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<BinConfig, ConfigError> {
        BinConfig::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn refuses_to_start_without_a_secret_unless_demo() {
        let err = from(&[]).err().expect("no secret, no demo");
        assert_eq!(err.variable, "LIBCAL_SIM_CLIENT_SECRET");
        let demo = from(&[("LIBCAL_SIM_DEMO", "1")]).unwrap();
        assert!(demo.demo);
        assert_eq!(demo.sim.client_secret.len(), 32);
        assert_eq!(demo.sim.listen.to_string(), DEFAULT_BIN_LISTEN);
    }

    #[test]
    fn reads_the_knobs_and_rejects_bad_values() {
        let config = from(&[
            ("LIBCAL_SIM_CLIENT_SECRET", "s3cret"),
            ("LIBCAL_SIM_TIME_ZONE", "Europe/London"),
            ("LIBCAL_SIM_OVER_LIMIT", "clamp"),
            ("LIBCAL_SIM_MAX_LIMIT", "100"),
            ("LIBCAL_SIM_IGNORE_PAST_DATES", "1"),
        ])
        .unwrap();
        assert!(config.sim.ignore_past_dates);
        assert_eq!(config.sim.client_secret, "s3cret");
        assert_eq!(config.sim.time_zone, chrono_tz::Europe::London);
        assert_eq!(config.sim.over_limit, OverLimit::Clamp);
        assert_eq!(config.sim.max_limit, 100);
        let bad = from(&[
            ("LIBCAL_SIM_CLIENT_SECRET", "s"),
            ("LIBCAL_SIM_TIME_ZONE", "Mars/Base"),
        ]);
        assert_eq!(bad.err().unwrap().variable, "LIBCAL_SIM_TIME_ZONE");
    }
}
