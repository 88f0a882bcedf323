//! Loading a service's YAML configuration file: the errors name the file or the field and the fix.
//! Services parse into their own raw type (unknown keys rejected) and resolve it themselves.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config: field `{field}`: {message}")]
    Field { field: String, message: String },
}

/// Refuses a file holding secrets (tokens, a ZooKeeper identity) that its group or other users
/// may read or write: `Err` names the file, its mode and the fix.
pub fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{}: holds secrets but its group or other users may read or write it (mode {mode:04o}): chmod 600 {}",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// A resolve-stage error for `field`.
pub fn field(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Field { field: field.into(), message: message.into() }
}

/// Reads and parses a YAML file into `T` (its raw, as-written form).
pub fn load_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    parse_yaml(&text, path)
}

pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    serde_saphyr::from_str(text).map_err(|e| ConfigError::Syntax { path: path.to_path_buf(), message: e.to_string() })
}

/// `value` (or `default` when absent) if it lies in `range`; else an error naming `name`, the
/// value and the accepted range (`unit` follows the range, e.g. " milliseconds").
pub fn in_range<T: PartialOrd + Copy + std::fmt::Display>(
    name: &str,
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, ConfigError> {
    let v = value.unwrap_or(default);
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(field(name, format!("{v} is out of range: use {}..={}{unit}", range.start(), range.end())))
    }
}
