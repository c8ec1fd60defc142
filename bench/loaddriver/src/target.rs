//! The target guard: the driver talks only to `http://127.0.0.1:<port>`.

use reqwest::Url;

/// Checks a base URL and returns it without a trailing slash. Only plain HTTP to 127.0.0.1
/// with no path, query, or credentials is accepted: a load driver must never hit another host.
pub fn check_base_url(raw: &str) -> Result<String, String> {
    let url = Url::parse(raw).map_err(|e| format!("base URL {raw:?}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!("base URL {raw:?}: only http:// is supported"));
    }
    if url.host_str() != Some("127.0.0.1") {
        return Err(format!(
            "base URL {raw:?}: only 127.0.0.1 targets are allowed"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("base URL {raw:?}: no credentials in the URL"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("base URL {raw:?}: give only scheme, host and port"));
    }
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(format!("http://127.0.0.1:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_loopback_only() {
        assert_eq!(
            check_base_url("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            check_base_url("http://127.0.0.1:3000/").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            check_base_url("http://127.0.0.1").unwrap(),
            "http://127.0.0.1:80"
        );
        for bad in [
            "http://localhost:3000",
            "http://10.0.0.1:3000",
            "http://127.0.0.2:3000",
            "http://[::1]:3000",
            "https://127.0.0.1:3000",
            "http://127.0.0.1.example.com:3000",
            "http://user:pw@127.0.0.1:3000",
            "http://127.0.0.1:3000/api",
            "http://127.0.0.1:3000/?x=1",
            "127.0.0.1:3000",
            "",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad} accepted");
        }
    }
}
