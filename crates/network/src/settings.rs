//! The `[network]` settings (config file table, `SLUICE_NETWORK_*` environment, flags).

use chrono_tz::Tz;
use sluice_core::Settings;

/// Where a row's 5-minute period comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PeriodFrom {
    /// Its own `interval_start_timestamp`/`interval_end_timestamp` columns.
    #[default]
    Rows,
    /// The file name `ipflow_data.ts-<period end ms>.<part>…`, as the Django system took it.
    FileName,
}

impl PeriodFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodFrom::Rows => "rows",
            PeriodFrom::FileName => "file-name",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Zone in which the Flask routes read `from`/`to` and print their times (the original
    /// used its host's local zone).
    pub compat_time_zone: Tz,
    pub period_from: PeriodFrom,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            compat_time_zone: Tz::UTC,
            period_from: PeriodFrom::Rows,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("compat_time_zone `{0}` is not an IANA time zone name (e.g. UTC, Europe/Athens)")]
    TimeZone(String),
    #[error("period_from `{0}` must be `rows` or `file-name`")]
    PeriodFrom(String),
    #[error("{0} must be a string")]
    NotAString(&'static str),
}

impl NetworkSettings {
    pub fn from_settings(settings: &Settings) -> Result<NetworkSettings, SettingsError> {
        let table = settings.domain(crate::ingest::DOMAIN);
        let text = |key: &'static str| match table.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or(SettingsError::NotAString(key)),
        };
        let mut out = NetworkSettings::default();
        if let Some(zone) = text("compat_time_zone")? {
            out.compat_time_zone = zone.parse().map_err(|_| SettingsError::TimeZone(zone))?;
        }
        if let Some(from) = text("period_from")? {
            out.period_from = match from.as_str() {
                "rows" => PeriodFrom::Rows,
                "file-name" => PeriodFrom::FileName,
                _ => return Err(SettingsError::PeriodFrom(from)),
            };
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(key: &str, value: toml::Value) -> Settings {
        let mut s = Settings::default();
        let mut t = toml::Table::new();
        t.insert(key.into(), value);
        s.domains.insert("network".into(), t);
        s
    }

    #[test]
    fn values_are_checked_and_named() {
        assert_eq!(
            NetworkSettings::from_settings(&Settings::default()),
            Ok(NetworkSettings::default())
        );
        let athens = with("compat_time_zone", "Europe/Athens".into());
        assert_eq!(
            NetworkSettings::from_settings(&athens).map(|s| s.compat_time_zone),
            Ok(chrono_tz::Europe::Athens)
        );
        let bad = with("compat_time_zone", "Mars/Olympus".into());
        assert!(NetworkSettings::from_settings(&bad)
            .unwrap_err()
            .to_string()
            .contains("`Mars/Olympus`"));
        let names = with("period_from", "file-name".into());
        assert_eq!(
            NetworkSettings::from_settings(&names).map(|s| s.period_from),
            Ok(PeriodFrom::FileName)
        );
        assert_eq!(
            NetworkSettings::from_settings(&with("period_from", "name".into())),
            Err(SettingsError::PeriodFrom("name".into()))
        );
        assert_eq!(
            NetworkSettings::from_settings(&with("period_from", 1.into())),
            Err(SettingsError::NotAString("period_from"))
        );
    }
}
