//! The dashboard's static files, compiled into the binary: uPlot 1.6.32
//! (MIT, vendored from the npm registry with its licence in
//! `assets/uplot/`), the page's own script and stylesheet. Users run this
//! on machines without internet, so nothing comes from a CDN.
//!
//! Caching: uPlot's path names its version, so it is served `immutable`
//! for a year; the page's own files may change with a new build, so they
//! are revalidated (`no-cache`) against a strong ETag (a hash of the
//! bytes): a reload costs a 304.

use std::sync::OnceLock;

pub const UPLOT_JS_PATH: &str = "/assets/uplot-1.6.32.iife.min.js";
pub const UPLOT_CSS_PATH: &str = "/assets/uplot-1.6.32.min.css";
pub const UPLOT_LICENSE_PATH: &str = "/assets/uplot-LICENSE.txt";
pub const DASHBOARD_JS_PATH: &str = "/assets/dashboard.js";
pub const DASHBOARD_CSS_PATH: &str = "/assets/dashboard.css";

/// One embedded file.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// Versioned: cache for a year without asking again.
    pub immutable: bool,
}

/// Every file under `/assets/`.
pub const ASSETS: [Asset; 5] = [
    Asset {
        path: UPLOT_JS_PATH,
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../assets/uplot/uPlot.iife.min.js"),
        immutable: true,
    },
    Asset {
        path: UPLOT_CSS_PATH,
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../assets/uplot/uPlot.min.css"),
        immutable: true,
    },
    Asset {
        path: UPLOT_LICENSE_PATH,
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../../assets/uplot/LICENSE"),
        immutable: true,
    },
    Asset {
        path: DASHBOARD_JS_PATH,
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../../assets/dashboard.js"),
        immutable: false,
    },
    Asset {
        path: DASHBOARD_CSS_PATH,
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../assets/dashboard.css"),
        immutable: false,
    },
];

/// The asset at `path`, and its ETag.
pub fn find(path: &str) -> Option<(&'static Asset, &'static str)> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &crate::core::data::sha256_hex(a.bytes)[..16]))
            .collect()
    });
    ASSETS
        .iter()
        .zip(tags)
        .find(|(a, _)| a.path == path)
        .map(|(a, t)| (a, t.as_str()))
}

/// `Cache-Control` of an asset.
pub fn cache_control(a: &Asset) -> &'static str {
    if a.immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// Does an `If-None-Match` header match `etag`?
pub fn not_modified(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|h| {
        h.split(',')
            .map(str::trim)
            .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplot_is_the_vendored_1_6_32_with_its_licence() {
        let (js, tag) = find(UPLOT_JS_PATH).unwrap();
        // `wc -c package/dist/uPlot.iife.min.js` of `npm pack uplot@1.6.32`
        assert_eq!(js.bytes.len(), 51081);
        assert!(tag.starts_with('"') && tag.len() == 18);
        let (lic, _) = find(UPLOT_LICENSE_PATH).unwrap();
        assert!(std::str::from_utf8(lic.bytes).unwrap().contains("MIT"));
        assert!(find("/assets/other.js").is_none());
    }

    #[test]
    fn etags_match_as_http_says() {
        let e = "\"abc\"";
        assert!(not_modified(Some("\"abc\""), e));
        assert!(not_modified(Some("\"x\", W/\"abc\""), e));
        assert!(not_modified(Some("*"), e));
        assert!(!not_modified(Some("\"abd\""), e));
        assert!(!not_modified(None, e));
    }
}
