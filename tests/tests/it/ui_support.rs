//! A cookie-keeping HTML client for the dashboard tests: follows no redirects (the tests check
//! them), sends a chosen `Host`, and fills in the CSRF token of forms.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use moltbot_saas_tests::TestApp;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::users_support::PASSWORD;

/// One page's answer.
#[derive(Debug)]
pub struct Page {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The HTML.
    pub html: String,
}

impl Page {
    /// The `Location` of a redirect.
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` line of cookie `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

/// A browser stand-in: a cookie jar per client, a `Host` header, an `Origin` when asked.
pub struct Browser {
    base: String,
    client: reqwest::Client,
    /// Cookies by name.
    pub cookies: BTreeMap<String, String>,
    /// The `Host` header sent (`None`: the address's).
    pub host: Option<String>,
}

impl Browser {
    /// A browser for `app`'s address.
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.address.clone(),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            host: None,
        }
    }

    /// The same browser on another host name (`acme.localhost`).
    pub fn on_host(mut self, host: &str, port: u16) -> Self {
        self.host = Some(format!("{host}:{port}"));
        self
    }

    fn keep(&mut self, headers: &HeaderMap) {
        for c in headers.get_all("set-cookie").iter() {
            let c = c.to_str().unwrap();
            let pair = c.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("accept", "text/html");
        if let Some(h) = &self.host {
            req = req.header("host", h);
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header("cookie", jar.join("; "));
        }
        req
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let resp = req.send().await.expect("request failed");
        let status = resp.status();
        let headers = resp.headers().clone();
        self.keep(&headers);
        let html = resp.text().await.unwrap();
        Page {
            status,
            headers,
            html,
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.request(reqwest::Method::GET, path);
        self.send(req).await
    }

    /// `GET path` with extra headers.
    pub async fn get_with(&mut self, path: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.request(reqwest::Method::GET, path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// The CSRF token of this browser (from its cookie; a page is fetched first if it has none).
    pub async fn csrf(&mut self) -> String {
        if !self.cookies.contains_key("msk_csrf") {
            self.get("/login").await;
        }
        self.cookies["msk_csrf"].clone()
    }

    /// Posts a form with the CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf().await;
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, None).await
    }

    /// Posts exactly these fields (no CSRF token added), with an `Origin` if given.
    pub async fn post_raw(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Page {
        let mut req = self.request(reqwest::Method::POST, path).form(fields);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        self.send(req).await
    }

    /// Logs in through the form (`tenant` empty for an operator); asserts the redirect.
    pub async fn log_in(&mut self, tenant: &str, email: &str) -> Page {
        let page = self
            .post(
                "/login",
                &[("tenant", tenant), ("email", email), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        page
    }
}

/// Creates an operator user with [`PASSWORD`] through the API.
pub async fn operator_user(app: &TestApp, email: &str) {
    let r = app
        .post(
            "/operators",
            &json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}
