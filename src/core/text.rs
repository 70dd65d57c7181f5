//! Text from outside made fit for a one-line message (redaction, escaping,
//! bounds), for every layer that quotes it.
//!
//! Every text a config error quotes (a key, a path, a parser message, a
//! value) goes through [`sanitize`]: URL passwords replaced by `***`,
//! control characters escaped, length bounded. [`redact_url`] hides the
//! password of the broker URL where the settings are printed or logged.

use std::path::Path;

/// Longest quoted text in an error message (a key, a path, a parser message).
const MAX_QUOTED_CHARS: usize = 300;

/// `amqp://user:secret@host` -> `amqp://user:***@host`; unparsable input is hidden whole.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable url>".into(),
    }
}

/// A path as shown in a message: bounded and escaped.
pub fn shown_path(path: &Path) -> String {
    sanitize(&path.display().to_string())
}

/// Text from outside made fit for a one-line message: URL passwords
/// redacted, control characters (newlines too) escaped, at most
/// [`MAX_QUOTED_CHARS`] characters once escaped (an escape is up to ten:
/// bounding the input alone let 300 bidi overrides make 3,000).
pub fn sanitize(text: &str) -> String {
    let redacted = redact_credentials(text);
    let mut out = String::new();
    let mut shown = 0;
    for c in redacted.chars() {
        let piece: String = if needs_escape(c) {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        let n = piece.chars().count();
        if shown + n > MAX_QUOTED_CHARS {
            out.push_str("...");
            break;
        }
        shown += n;
        out.push_str(&piece);
    }
    out
}

/// Replaces the password of every `scheme://user:password@` in `text` by
/// `***`, also in broken URLs (an unclosed quote, a `/` in the password):
/// the user info runs to the last `@` before a space or a quote.
pub fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '`')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                let userinfo = &tail[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// `s` with control characters escaped, cut (on a character boundary) to
/// at most `max` bytes, the cut marked with "...".
pub fn bounded_text(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let piece: String = if needs_escape(c) {
            c.escape_default().collect()
        } else {
            c.to_string()
        };
        if out.len() + piece.len() > max.saturating_sub(3) {
            out.push_str("...");
            return out;
        }
        out.push_str(&piece);
    }
    out
}

/// Most distinct names [`intern`] keeps: far more than any run needs (a
/// schema has at most 1000 columns), few enough to bound what it holds.
pub const MAX_INTERNED: usize = 100_000;

/// `name` as a `&'static str`: column names of a schema, which the
/// monitor's rules, reports and metrics name for the whole process, are
/// interned once (each distinct name is kept once, for the life of the
/// process). Past [`MAX_INTERNED`] distinct names, `None`.
pub fn intern(name: &str) -> Option<&'static str> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static NAMES: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let names = names.get_or_insert_with(HashSet::new);
    if let Some(n) = names.get(name) {
        return Some(n);
    }
    if names.len() >= MAX_INTERNED {
        return None;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    Some(leaked)
}

/// Control characters, and the invisible ones that reorder or hide text
/// (bidirectional overrides and isolates, zero-width characters, the byte
/// order mark): a quoted name must read as what it is.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod invisible_tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_zero_width_characters_are_escaped() {
        let shown = bounded_text("\u{202e}ecirp\u{200b}", 100);
        assert_eq!(shown, "\\u{202e}ecirp\\u{200b}");
        assert_eq!(sanitize("a\u{2066}b"), "a\\u{2066}b");
    }

    #[test]
    fn the_bound_holds_after_escaping() {
        let shown = sanitize(&"\u{202e}Z".repeat(3000));
        assert!(
            shown.chars().count() <= MAX_QUOTED_CHARS + 3,
            "{}",
            shown.len()
        );
        assert!(shown.ends_with("..."));
    }
}
