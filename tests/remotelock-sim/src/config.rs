//! Simulator settings: what the public RemoteLock docs leave open is configurable here.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use crate::keypad::DeniedPinEvents;
use crate::pin_conflicts::{PinConflictError, PinUniqueness};
use crate::webhooks::TlsRoute;

/// Listen address of the binary when `REMOTELOCK_SIM_LISTEN` is not set.
pub const DEFAULT_BIN_LISTEN: &str = "127.0.0.1:4010";

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen; `127.0.0.1:0` picks a free port (tests).
    pub listen: SocketAddr,
    /// The one OAuth application the simulator knows.
    pub client_id: String,
    pub client_secret: String,
    /// Requests per fixed window per account (docs: 120 a minute).
    pub rate_limit_per_minute: u32,
    /// The window's length: the docs' minute, or shorter so a test sees several windows.
    /// Whole seconds (`X-RateLimit-Reset` has no finer unit).
    pub rate_limit_window: Duration,
    /// Lifetime of access tokens (docs: 7200 s).
    pub access_token_ttl: Duration,
    /// Status for a missing/invalid/expired token: the docs say 403, Doorkeeper usually says 401.
    pub bad_token_status: u16,
    /// Accepted PIN lengths (third-party statement: 4 to 10 digits).
    pub pin_digits: RangeInclusive<usize>,
    /// Where PINs must be unique and when that is checked (unknown, §3.5).
    pub pin_uniqueness: PinUniqueness,
    /// The shape of the 422 for a PIN held by someone else.
    pub pin_conflict_error: PinConflictError,
    /// Refuse runs like 1234 / 9876 and repeats like 1111 (partners report sequential codes
    /// being rejected).
    pub reject_guessable_pins: bool,
    /// How long after a grant or PIN change a connected lock syncs the person (and reports
    /// `access_person_synced` / `access_person_sync_failed`); zero: within the request.
    pub sync_delay: Duration,
    /// How long after an event happens a connected lock uploads it (its `created_at` lags
    /// `occurred_at` by this); an offline lock uploads when it reconnects.
    pub event_upload_lag: Duration,
    /// Which events a refused keypad PIN publishes (the docs leave it open).
    pub denied_pin_events: DeniedPinEvents,
    /// A battery report below this percentage publishes `power_level_low` (threshold unknown).
    pub power_level_low_below: u8,
    /// A webhook must answer 2xx within this (docs: 3 s).
    pub webhook_timeout: Duration,
    /// Multiplies the documented retry schedule (1 min … 3 days + jitter); e.g. `1e-6` runs
    /// all six retries within a second.
    pub webhook_retry_scale: f64,
    /// Every delivered webhook is sent a second time (at-least-once delivery, as retries
    /// after a lost answer cause).
    pub webhook_deliver_twice: bool,
    /// `https://` subscriber hosts delivered over plain HTTP to a local address, as a
    /// TLS-terminating proxy in front of the receiver would (RemoteLock only accepts HTTPS
    /// URLs; tests serve HTTP on loopback).
    pub webhook_tls_routes: Vec<TlsRoute>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            client_id: "lockbridge-dev".to_owned(),
            client_secret: "lockbridge-dev-secret".to_owned(),
            rate_limit_per_minute: 120,
            rate_limit_window: Duration::from_secs(60),
            access_token_ttl: Duration::from_secs(7200),
            bad_token_status: 403,
            pin_digits: 4..=10,
            pin_uniqueness: PinUniqueness::Account,
            pin_conflict_error: PinConflictError::PinTaken,
            reject_guessable_pins: true,
            sync_delay: Duration::ZERO,
            event_upload_lag: Duration::ZERO,
            denied_pin_events: DeniedPinEvents::UsedFailed,
            power_level_low_below: 20,
            webhook_timeout: Duration::from_secs(3),
            webhook_retry_scale: 1.0,
            webhook_deliver_twice: false,
            webhook_tls_routes: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    variable: &'static str,
    problem: String,
}

impl SimConfig {
    /// Reads the `REMOTELOCK_SIM_*` environment variables (see README), starting from the
    /// defaults with the binary's fixed port.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var =
            |variable: &'static str| lookup(variable).filter(|value| !value.trim().is_empty());
        let invalid = |variable: &'static str, problem: String| ConfigError { variable, problem };
        let defaults = Self::default();

        let listen = var("REMOTELOCK_SIM_LISTEN")
            .unwrap_or_else(|| DEFAULT_BIN_LISTEN.to_owned())
            .parse()
            .map_err(|e| invalid("REMOTELOCK_SIM_LISTEN", format!("{e}")))?;
        let number = |variable: &'static str| -> Result<Option<u64>, ConfigError> {
            var(variable)
                .map(|value| value.trim().parse::<u64>())
                .transpose()
                .map_err(|e| invalid(variable, format!("{e}")))
        };
        let rate_limit_per_minute = match number("REMOTELOCK_SIM_RATE_LIMIT_PER_MINUTE")? {
            Some(limit) => u32::try_from(limit)
                .map_err(|e| invalid("REMOTELOCK_SIM_RATE_LIMIT_PER_MINUTE", format!("{e}")))?,
            None => defaults.rate_limit_per_minute,
        };
        let rate_limit_window = match number("REMOTELOCK_SIM_RATE_LIMIT_WINDOW_SECS")? {
            Some(0) => {
                return Err(invalid(
                    "REMOTELOCK_SIM_RATE_LIMIT_WINDOW_SECS",
                    "a window lasts one second at least".to_owned(),
                ));
            }
            Some(secs) => Duration::from_secs(secs),
            None => defaults.rate_limit_window,
        };
        let access_token_ttl = number("REMOTELOCK_SIM_ACCESS_TOKEN_TTL_SECS")?
            .map_or(defaults.access_token_ttl, Duration::from_secs);
        let bad_token_status = match number("REMOTELOCK_SIM_BAD_TOKEN_STATUS")? {
            Some(status @ 400..=599) => status as u16,
            Some(other) => {
                return Err(invalid(
                    "REMOTELOCK_SIM_BAD_TOKEN_STATUS",
                    format!("{other} is not a 4xx/5xx status"),
                ));
            }
            None => defaults.bad_token_status,
        };
        let pin_digits = match var("REMOTELOCK_SIM_PIN_DIGITS") {
            Some(range) => parse_digit_range(&range).ok_or_else(|| {
                invalid(
                    "REMOTELOCK_SIM_PIN_DIGITS",
                    format!("{range:?} is not MIN-MAX"),
                )
            })?,
            None => defaults.pin_digits,
        };
        let pin_uniqueness = choose(
            var,
            "REMOTELOCK_SIM_PIN_UNIQUENESS",
            &[
                ("account", PinUniqueness::Account),
                ("device", PinUniqueness::DeviceAtGrant),
                ("sync", PinUniqueness::DeviceAtSync),
                ("none", PinUniqueness::None),
            ],
        )?
        .unwrap_or(defaults.pin_uniqueness);
        let pin_conflict_error = choose(
            var,
            "REMOTELOCK_SIM_PIN_CONFLICT_ERROR",
            &[
                ("taken", PinConflictError::PinTaken),
                ("device", PinConflictError::UsedOnDevice),
            ],
        )?
        .unwrap_or(defaults.pin_conflict_error);
        let reject_guessable_pins = choose(
            var,
            "REMOTELOCK_SIM_REJECT_GUESSABLE_PINS",
            &[("true", true), ("false", false)],
        )?
        .unwrap_or(defaults.reject_guessable_pins);
        let sync_delay = number("REMOTELOCK_SIM_SYNC_DELAY_MS")?
            .map_or(defaults.sync_delay, Duration::from_millis);
        let event_upload_lag = number("REMOTELOCK_SIM_EVENT_UPLOAD_LAG_MS")?
            .map_or(defaults.event_upload_lag, Duration::from_millis);
        let denied_pin_events = choose(
            var,
            "REMOTELOCK_SIM_DENIED_PIN_EVENTS",
            &[
                ("used", DeniedPinEvents::UsedFailed),
                ("denied", DeniedPinEvents::AccessDenied),
                ("both", DeniedPinEvents::Both),
            ],
        )?
        .unwrap_or(defaults.denied_pin_events);
        let power_level_low_below = match number("REMOTELOCK_SIM_POWER_LEVEL_LOW_BELOW")? {
            Some(level @ 0..=100) => level as u8,
            Some(other) => {
                return Err(invalid(
                    "REMOTELOCK_SIM_POWER_LEVEL_LOW_BELOW",
                    format!("{other} is not a percentage"),
                ));
            }
            None => defaults.power_level_low_below,
        };
        let webhook_timeout = number("REMOTELOCK_SIM_WEBHOOK_TIMEOUT_MS")?
            .map_or(defaults.webhook_timeout, Duration::from_millis);
        let webhook_retry_scale = match var("REMOTELOCK_SIM_WEBHOOK_RETRY_SCALE") {
            Some(raw) => raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|scale| scale.is_finite() && *scale >= 0.0)
                .ok_or_else(|| {
                    invalid(
                        "REMOTELOCK_SIM_WEBHOOK_RETRY_SCALE",
                        format!("{raw:?} is not a factor of 0 or more"),
                    )
                })?,
            None => defaults.webhook_retry_scale,
        };
        let webhook_deliver_twice = choose(
            var,
            "REMOTELOCK_SIM_WEBHOOK_DELIVER_TWICE",
            &[("true", true), ("false", false)],
        )?
        .unwrap_or(defaults.webhook_deliver_twice);
        let webhook_tls_routes = match var("REMOTELOCK_SIM_WEBHOOK_TLS_ROUTES") {
            Some(raw) => raw
                .split(',')
                .map(|route| {
                    TlsRoute::parse(route)
                        .map_err(|e| invalid("REMOTELOCK_SIM_WEBHOOK_TLS_ROUTES", format!("{e}")))
                })
                .collect::<Result<_, _>>()?,
            None => defaults.webhook_tls_routes,
        };

        Ok(Self {
            listen,
            client_id: var("REMOTELOCK_SIM_CLIENT_ID").unwrap_or(defaults.client_id),
            client_secret: var("REMOTELOCK_SIM_CLIENT_SECRET").unwrap_or(defaults.client_secret),
            rate_limit_per_minute,
            rate_limit_window,
            access_token_ttl,
            bad_token_status,
            pin_digits,
            pin_uniqueness,
            pin_conflict_error,
            reject_guessable_pins,
            sync_delay,
            event_upload_lag,
            denied_pin_events,
            power_level_low_below,
            webhook_timeout,
            webhook_retry_scale,
            webhook_deliver_twice,
            webhook_tls_routes,
        })
    }
}

/// The option named by a variable's value (case-insensitive), `None` when it is unset.
fn choose<T: Copy>(
    var: impl Fn(&'static str) -> Option<String>,
    variable: &'static str,
    options: &[(&str, T)],
) -> Result<Option<T>, ConfigError> {
    let Some(value) = var(variable) else {
        return Ok(None);
    };
    let value = value.trim();
    options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, option)| Some(*option))
        .ok_or_else(|| ConfigError {
            variable,
            problem: format!(
                "{value:?} is not one of {}",
                options
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join("|")
            ),
        })
}

/// `"4-10"` → `4..=10`; lengths start at 1.
fn parse_digit_range(raw: &str) -> Option<RangeInclusive<usize>> {
    let (min, max) = raw.split_once('-')?;
    let (min, max) = (min.trim().parse().ok()?, max.trim().parse().ok()?);
    (1 <= min && min <= max).then_some(min..=max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<SimConfig, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SimConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn binary_defaults_to_the_fixed_port() {
        let config = from(&[]).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_BIN_LISTEN);
        assert_eq!(config.bad_token_status, 403);
        assert_eq!(config.pin_digits, 4..=10);
        assert_eq!(config.pin_uniqueness, PinUniqueness::Account);
        assert_eq!(config.pin_conflict_error, PinConflictError::PinTaken);
        assert!(config.reject_guessable_pins);
        assert_eq!(config.sync_delay, Duration::ZERO);
        assert_eq!(config.rate_limit_window, Duration::from_secs(60));
        assert_eq!(config.event_upload_lag, Duration::ZERO);
        assert_eq!(config.denied_pin_events, DeniedPinEvents::UsedFailed);
        assert_eq!(config.power_level_low_below, 20);
        assert_eq!(config.webhook_timeout, Duration::from_secs(3));
        assert_eq!(config.webhook_retry_scale, 1.0);
        assert!(!config.webhook_deliver_twice);
        assert!(config.webhook_tls_routes.is_empty());
    }

    #[test]
    fn reads_event_and_webhook_knobs() {
        let config = from(&[
            ("REMOTELOCK_SIM_EVENT_UPLOAD_LAG_MS", "1500"),
            ("REMOTELOCK_SIM_DENIED_PIN_EVENTS", "both"),
            ("REMOTELOCK_SIM_POWER_LEVEL_LOW_BELOW", "15"),
            ("REMOTELOCK_SIM_WEBHOOK_TIMEOUT_MS", "200"),
            ("REMOTELOCK_SIM_WEBHOOK_RETRY_SCALE", "0.000001"),
            ("REMOTELOCK_SIM_WEBHOOK_DELIVER_TWICE", "true"),
            (
                "REMOTELOCK_SIM_WEBHOOK_TLS_ROUTES",
                "hooks.example=127.0.0.1:9000, other.example:8443=127.0.0.1:9001",
            ),
        ])
        .unwrap();
        assert_eq!(config.event_upload_lag, Duration::from_millis(1500));
        assert_eq!(config.denied_pin_events, DeniedPinEvents::Both);
        assert_eq!(config.power_level_low_below, 15);
        assert_eq!(config.webhook_timeout, Duration::from_millis(200));
        assert_eq!(config.webhook_retry_scale, 0.000001);
        assert!(config.webhook_deliver_twice);
        let routes: Vec<String> = config
            .webhook_tls_routes
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            routes,
            [
                "hooks.example:443=127.0.0.1:9000",
                "other.example:8443=127.0.0.1:9001"
            ]
        );

        assert!(from(&[("REMOTELOCK_SIM_DENIED_PIN_EVENTS", "silent")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_POWER_LEVEL_LOW_BELOW", "101")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_WEBHOOK_RETRY_SCALE", "-1")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_WEBHOOK_TLS_ROUTES", "hooks.example")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_WEBHOOK_TLS_ROUTES", "=127.0.0.1:9000")]).is_err());
    }

    #[test]
    fn reads_overrides_and_rejects_nonsense() {
        let config = from(&[
            ("REMOTELOCK_SIM_LISTEN", "0.0.0.0:9000"),
            ("REMOTELOCK_SIM_BAD_TOKEN_STATUS", "401"),
            ("REMOTELOCK_SIM_PIN_DIGITS", "6-8"),
            ("REMOTELOCK_SIM_ACCESS_TOKEN_TTL_SECS", "60"),
            ("REMOTELOCK_SIM_PIN_UNIQUENESS", "Device"),
            ("REMOTELOCK_SIM_PIN_CONFLICT_ERROR", "device"),
            ("REMOTELOCK_SIM_REJECT_GUESSABLE_PINS", "false"),
        ])
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.bad_token_status, 401);
        assert_eq!(config.pin_digits, 6..=8);
        assert_eq!(config.access_token_ttl, Duration::from_secs(60));
        assert_eq!(config.pin_uniqueness, PinUniqueness::DeviceAtGrant);
        assert_eq!(config.pin_conflict_error, PinConflictError::UsedOnDevice);
        assert!(!config.reject_guessable_pins);
        let none = from(&[("REMOTELOCK_SIM_PIN_UNIQUENESS", "none")]).unwrap();
        assert_eq!(none.pin_uniqueness, PinUniqueness::None);
        let sync = from(&[
            ("REMOTELOCK_SIM_PIN_UNIQUENESS", "sync"),
            ("REMOTELOCK_SIM_SYNC_DELAY_MS", "250"),
        ])
        .unwrap();
        assert_eq!(sync.pin_uniqueness, PinUniqueness::DeviceAtSync);
        assert_eq!(sync.sync_delay, Duration::from_millis(250));
        assert!(from(&[("REMOTELOCK_SIM_SYNC_DELAY_MS", "soon")]).is_err());
        let short = from(&[("REMOTELOCK_SIM_RATE_LIMIT_WINDOW_SECS", "5")]).unwrap();
        assert_eq!(short.rate_limit_window, Duration::from_secs(5));
        assert!(from(&[("REMOTELOCK_SIM_RATE_LIMIT_WINDOW_SECS", "0")]).is_err());

        assert!(from(&[("REMOTELOCK_SIM_PIN_DIGITS", "8-6")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_BAD_TOKEN_STATUS", "200")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_LISTEN", "nowhere")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_PIN_UNIQUENESS", "lock")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_PIN_CONFLICT_ERROR", "pin")]).is_err());
        assert!(from(&[("REMOTELOCK_SIM_REJECT_GUESSABLE_PINS", "yes")]).is_err());
    }
}
