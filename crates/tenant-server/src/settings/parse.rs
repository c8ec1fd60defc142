//! Reading one variable: absent is the default, present must parse (and fall in a range); the
//! error names the variable and quotes the value (secrets are read by `token`, which never does).

use super::error::SettingsError;

/// `var` parsed as a `T`, or `default` when absent.
pub(super) fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, SettingsError>
where
    T::Err: std::fmt::Display,
{
    match get(var) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e: T::Err| SettingsError {
            var,
            message: format!("`{}`: {e}", v.trim()),
        }),
    }
}

/// `var` parsed as a `T` within `range`, or `default` when absent.
pub(super) fn parse_in<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, SettingsError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let v = parse(get, var, default)?;
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(SettingsError {
            var,
            message: format!("{v} is outside {}..={}", range.start(), range.end()),
        })
    }
}
