//! The style sheet and the script, embedded in the binary and served under names that carry a hash of their
//! content, so browsers may keep them for a year and still never run a stale copy.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const CSS: &str = include_str!("../assets/dashboard.css");
const JS: &str = include_str!("../assets/dashboard.js");

/// One embedded file and the name it is served under.
pub struct Asset {
    pub name: String,
    body: &'static str,
    content_type: &'static str,
}

fn asset(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
    let hash = Sha256::digest(body.as_bytes());
    let short: String = hash.iter().take(6).map(|byte| format!("{byte:02x}")).collect();
    Asset { name: format!("{stem}.{short}.{extension}"), body, content_type }
}

pub static STYLE: LazyLock<Asset> = LazyLock::new(|| asset("dashboard", "css", CSS, "text/css; charset=utf-8"));
pub static SCRIPT: LazyLock<Asset> = LazyLock::new(|| asset("dashboard", "js", JS, "text/javascript; charset=utf-8"));

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = [&*STYLE, &*SCRIPT].into_iter().find(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}
