//! What the dashboard's tests share: a browser's view of the real app (no redirects followed, the session cookie
//! kept by hand).
#![allow(dead_code)] // Each test file uses what it needs.

use signoff_testkit::TestApp;

/// A browser's view of the app: no redirects followed, the session cookie kept by hand.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub http: reqwest::Client,
    pub cookie: Option<String>,
}

pub struct Answer {
    pub status: u16,
    pub location: String,
    pub set_cookie: String,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { app, http, cookie: None }
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Answer {
        let builder = match &self.cookie {
            Some(cookie) => builder.header("cookie", cookie),
            None => builder,
        };
        let response = builder.send().await.expect("send");
        let header =
            |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        Answer { status, location, set_cookie, headers, body: response.text().await.unwrap() }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.app.url))).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.send(self.http.post(format!("{}{path}", self.app.url)).form(form)).await
    }

    /// Signs in with `key`; keeps the session cookie when one is set.
    pub async fn sign_in(&mut self, key: &str) -> Answer {
        let answer = self.post("/sign-in", &[("key", key), ("next", "/")]).await;
        if let Some(pair) = answer.set_cookie.split(';').next().filter(|pair| !pair.is_empty() && !pair.ends_with('='))
        {
            self.cookie = Some(pair.to_string());
        }
        answer
    }

    /// The CSRF token in a page's forms.
    pub async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await.body;
        let start = page.find(r#"name="csrf" value=""#).expect("a form with a CSRF token") + 19;
        page[start..start + page[start..].find('"').unwrap()].to_string()
    }
}
