//! Static assets (`static/`), embedded in the binary at compile time so a
//! binary copied alone (a container image, `/usr/local/bin`) serves them.
//!
//! Each file has a content hash. Pages link `/static/NAME?v=HASH`: a response
//! to that exact URL may be cached for a year (`immutable`); any other request
//! for the file gets `no-cache` and must revalidate its ETag.

use std::borrow::Cow;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::AppError;
use super::routes::{Access, Routes};

pub fn configure(routes: &mut Routes) {
    routes.get("/static/{name}", Access::Public, serve);
}

#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Embedded;

/// One year: the URL changes whenever the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

struct Asset {
    data: Cow<'static, [u8]>,
    /// First 16 hex digits of the content's SHA-256.
    hash: String,
}

fn asset(name: &str) -> Option<Asset> {
    if name.is_empty() || name.contains("..") || name.starts_with('/') {
        return None;
    }
    let file = Embedded::get(name)?;
    let hash = hex::encode(&file.metadata.sha256_hash()[..8]);
    Some(Asset {
        data: file.data,
        hash,
    })
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The URL pages use for an asset: with its content hash, so it can be cached
/// forever. (An unknown name is linked unhashed and will 404.)
pub fn url(name: &str) -> String {
    match asset(name) {
        Some(a) => format!("/static/{name}?v={}", a.hash),
        None => format!("/static/{name}"),
    }
}

/// `GET /static/{name}`.
pub async fn serve(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, AppError> {
    let name = name.into_inner();
    let asset = asset(&name).ok_or(AppError::NotFound)?;
    let etag = format!("\"{}\"", asset.hash);
    let versioned = req
        .query_string()
        .split('&')
        .any(|kv| kv.strip_prefix("v=") == Some(asset.hash.as_str()));
    let cache = if versioned { IMMUTABLE } else { REVALIDATE };
    let not_modified = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    let mut res = if not_modified {
        HttpResponse::NotModified().finish()
    } else {
        HttpResponse::Ok()
            .content_type(content_type(&name))
            .body(asset.data.into_owned())
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_is_embedded_with_a_stable_hashed_url() {
        let u = url("app.css");
        assert!(u.starts_with("/static/app.css?v="), "{u}");
        assert_eq!(u.len(), "/static/app.css?v=".len() + 16);
        assert_eq!(u, url("app.css"));
    }

    #[test]
    fn names_outside_the_embedded_folder_are_not_assets() {
        for name in [
            "",
            "../Cargo.toml",
            "/etc/passwd",
            "nope.css",
            "..%2fCargo.toml",
        ] {
            assert!(asset(name).is_none(), "{name}");
        }
    }
}
