//! libcal-connector's settings: the sections every service reads, `libcal` and `connector`
//! (design §3.6). Those of the other services are not parsed here.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use lockbridge_domain::TimeZone;
use lockbridge_runtime::configuration::{self, Credential, CredentialValues};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, de};
use url::Url;

pub type Settings = configuration::Settings<Sections>;

#[derive(Debug, Clone, Deserialize)]
pub struct Sections {
    pub libcal: LibcalSettings,
    pub connector: ConnectorSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConnectorSettings {
    /// `/healthz` and `/readyz`.
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LibcalSettings {
    /// The instance, e.g. `https://library.libcal.com/`: the API is under `1.1/`.
    pub base_url: Url,
    pub client_id: String,
    /// Empty until set, as every credential: see [`LibcalSettings::credentials`].
    #[serde(default)]
    pub client_secret: SecretString,
    /// The LibCal locations (`lid`) whose spaces and bookings come to lockbridge: a list, or
    /// a comma-separated string (as an environment variable gives it).
    #[serde(deserialize_with = "location_ids")]
    pub location_ids: Vec<u32>,
    /// The instance's time zone: LibCal names none, and gives times with offsets only. It is
    /// every location's zone unless `location_time_zones.<lid>` says otherwise.
    pub time_zone: Option<TimeZone>,
    /// Keyed by `lid` (a table's keys are text).
    #[serde(default)]
    pub location_time_zones: BTreeMap<String, TimeZone>,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Days ahead of today polled; yesterday is polled too.
    pub lookahead_days: u32,
    /// Successful polls in a row a booking must be missing from before it is cancelled.
    pub missing_polls_before_cancel: u32,
    /// How often the catalogue is read again (sooner when a booking names a space not seen).
    #[serde(with = "humantime_serde")]
    pub catalogue_interval: Duration,
    /// Rows per `/space/bookings` page (LibCal allows at most 500).
    pub page_size: u32,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// booking-intake's base URL.
    pub intake_url: Url,
    /// The connector's own `intake.tokens.<source>`; empty until set.
    #[serde(default)]
    pub intake_token: SecretString,
}

const CLIENT_SECRET: Credential = Credential {
    setting: "libcal.client_secret",
    remedy: "copy it from LibCal's Admin > API > API Authentication, where the application's \
             client id is too",
};
const INTAKE_TOKEN: Credential = Credential {
    setting: "libcal.intake_token",
    remedy: "set it to the token booking-intake has for this source (intake.tokens.<source>)",
};

/// LibCal's limit on `/space/bookings` rows per page [T].
const MAX_PAGE_SIZE: u32 = 500;
/// How far ahead one `/space/bookings` call may reach is 365 days; a year ahead is plenty.
const MAX_LOOKAHEAD_DAYS: u32 = 366;

impl LibcalSettings {
    pub fn credentials(&self) -> [CredentialValues<'_>; 2] {
        [
            CLIENT_SECRET.set_to(&self.client_secret),
            INTAKE_TOKEN.set_to(&self.intake_token),
        ]
    }

    /// Every setting a value alone cannot check, each mistake one sentence naming it.
    pub fn check(&self) -> Result<(), String> {
        if self.location_ids.is_empty() {
            return Err(
                "libcal.location_ids is empty; list the LibCal location ids (lid) \
                        whose bookings lockbridge should follow, e.g. \"8801,8802\""
                    .into(),
            );
        }
        if self.time_zone.is_none()
            && let Some(lid) = self
                .location_ids
                .iter()
                .find(|lid| !self.location_time_zones.contains_key(&lid.to_string()))
        {
            return Err(format!(
                "libcal.time_zone is not set and location {lid} has no \
                 libcal.location_time_zones.{lid}; set the instance's IANA zone, e.g. \
                 America/New_York (LibCal's API names none)"
            ));
        }
        if !(1..=MAX_LOOKAHEAD_DAYS).contains(&self.lookahead_days) {
            return Err(format!(
                "libcal.lookahead_days must be between 1 and {MAX_LOOKAHEAD_DAYS}"
            ));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(format!(
                "libcal.page_size must be between 1 and {MAX_PAGE_SIZE} (LibCal's limit)"
            ));
        }
        if self.missing_polls_before_cancel == 0 {
            return Err(
                "libcal.missing_polls_before_cancel must be 1 or more: a booking is \
                        never cancelled for one missing answer alone"
                    .into(),
            );
        }
        if self.poll_interval.is_zero() {
            return Err("libcal.poll_interval must be longer than zero".into());
        }
        Ok(())
    }

    /// The zone of location `lid` (checked by [`Self::check`] to exist for every one).
    pub fn zone_of(&self, lid: u32) -> TimeZone {
        self.location_time_zones
            .get(&lid.to_string())
            .copied()
            .or(self.time_zone)
            .unwrap_or_else(|| TimeZone::from_stored("UTC"))
    }

    /// The instance's own zone, in which LibCal's days ("today") begin.
    pub fn instance_zone(&self) -> TimeZone {
        self.time_zone
            .unwrap_or_else(|| self.zone_of(self.location_ids[0]))
    }
}

fn location_ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        List(Vec<u32>),
        Text(String),
        One(u32),
    }
    match Ids::deserialize(deserializer)? {
        Ids::List(ids) => Ok(ids),
        Ids::One(id) => Ok(vec![id]),
        Ids::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse().map_err(|_| {
                    de::Error::custom(format!(
                        "libcal.location_ids: \"{part}\" is not a LibCal location id (a number)"
                    ))
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(extra: &str) -> Result<Settings, String> {
        let layers = configuration::defaults().add_source(config_file(extra));
        let settings = Settings::read(layers).map_err(|e| format!("{e:?}"))?;
        settings.own.libcal.check()?;
        Ok(settings)
    }

    fn config_file(text: &str) -> config::File<config::FileSourceString, config::FileFormat> {
        config::File::from_str(text, config::FileFormat::Toml)
    }

    const SECRETS: &str = "[libcal]\nclient_secret = \"s\"\nintake_token = \"t\"\n";

    #[test]
    fn location_ids_are_a_list_or_a_comma_separated_string() {
        for (value, expected) in [
            ("[8801, 8802]", vec![8801, 8802]),
            ("\"8801, 8802\"", vec![8801, 8802]),
            ("8801", vec![8801]),
        ] {
            let text = format!("{SECRETS}location_ids = {value}\ntime_zone = \"Europe/London\"\n");
            assert_eq!(read(&text).unwrap().own.libcal.location_ids, expected);
        }
        let text = format!("{SECRETS}location_ids = \"8801,main\"\ntime_zone = \"UTC\"\n");
        let error = read(&text).unwrap_err();
        assert!(error.contains("is not a LibCal location id"), "{error}");
    }

    #[test]
    fn each_mistake_names_its_setting() {
        let cases = [
            (
                "location_ids = \"\"\ntime_zone = \"UTC\"",
                "libcal.location_ids is empty",
            ),
            ("location_ids = \"1\"", "libcal.time_zone is not set"),
            (
                "location_ids = \"1\"\ntime_zone = \"UTC\"\nlookahead_days = 0",
                "libcal.lookahead_days",
            ),
            (
                "location_ids = \"1\"\ntime_zone = \"UTC\"\npage_size = 501",
                "libcal.page_size",
            ),
            (
                "location_ids = \"1\"\ntime_zone = \"UTC\"\nmissing_polls_before_cancel = 0",
                "libcal.missing_polls_before_cancel",
            ),
        ];
        for (lines, expected) in cases {
            let error = read(&format!("{SECRETS}{lines}\n")).unwrap_err();
            assert!(error.contains(expected), "{lines}: {error}");
        }
    }

    #[test]
    fn a_location_may_have_its_own_zone() {
        let text = format!(
            "{SECRETS}location_ids = \"1,2\"\ntime_zone = \"America/New_York\"\n\
             [libcal.location_time_zones]\n2 = \"America/Chicago\"\n"
        );
        let libcal = read(&text).unwrap().own.libcal;
        assert_eq!(libcal.zone_of(1).name(), "America/New_York");
        assert_eq!(libcal.zone_of(2).name(), "America/Chicago");
    }
}
