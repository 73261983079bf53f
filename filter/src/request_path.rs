//! The path a request is routed on, made from the path as the caller sent
//! it (RFC 3986 §6.2.2 normalisation).
//!
//! Envoy could normalise the path itself, but it would do so before any
//! filter runs and keep no copy of the original; Alibaba signatures cover
//! the path byte for byte as sent (a Java SDK sends `%7E` for `~`), so the
//! bootstrap turns Envoy's normalisation off and the gateway keeps both:
//! signatures read `:path` as received, routing reads this.
//!
//! Rules, in order:
//! - the path must begin with `/` (origin form);
//! - `%XX` of an unreserved character (`A-Z a-z 0-9 - . _ ~`) is decoded,
//!   any other escape is kept with upper-case hex; `%00` is refused, as
//!   Envoy refuses it, and so is a `%` that does not start an escape (RFC
//!   3986 has no such path; kept, `%f%33` would decode into a new `%f3`);
//! - runs of `/` become one;
//! - `.` segments are removed and `..` removes the segment before it, never
//!   climbing above the root.
//!
//! Invariant: the result begins with `/` and has no `.`/`..` segment and no
//! empty segment but a trailing one, so nothing matched from it can climb.
//! Nearly every path is already normal and is borrowed, not copied.

use std::borrow::Cow;

/// Why a path cannot be routed.
#[derive(Debug, PartialEq, Eq)]
pub struct BadPath;

/// The routing form of a request target (`:path`): its path normalised,
/// its query (untouched) after it.
pub fn normalize_target(target: &str) -> Result<Cow<'_, str>, BadPath> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Ok(match (normalize(path)?, query) {
        (Cow::Borrowed(_), _) => Cow::Borrowed(target),
        (Cow::Owned(p), None) => Cow::Owned(p),
        (Cow::Owned(p), Some(q)) => Cow::Owned(format!("{p}?{q}")),
    })
}

/// The routing form of `raw` (path only, no query).
pub fn normalize(raw: &str) -> Result<Cow<'_, str>, BadPath> {
    if !raw.starts_with('/') {
        return Err(BadPath);
    }
    if is_normal(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = decode_unreserved(raw)?;
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = decoded.split('/').skip(1).collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, seg) in segments.into_iter().enumerate() {
        match seg {
            "." | ".." => {
                if seg == ".." {
                    out.pop();
                }
                trailing_slash = i == last;
            }
            "" => trailing_slash = i == last,
            s => {
                out.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut path = String::with_capacity(raw.len());
    for seg in &out {
        path.push('/');
        path.push_str(seg);
    }
    if trailing_slash || path.is_empty() {
        path.push('/');
    }
    Ok(Cow::Owned(path))
}

/// No escape, no empty inner segment, no dot segment: nothing to do.
fn is_normal(raw: &str) -> bool {
    !raw.contains('%') && !raw.contains("//") && !raw[1..].split('/').any(|s| s == "." || s == "..")
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn decode_unreserved(raw: &str) -> Result<String, BadPath> {
    let bytes = raw.as_bytes();
    let digit = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            // The character as it is (the input is UTF-8; `%` is ASCII).
            let ch_len = raw[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&raw[i..i + ch_len]);
            i += ch_len;
            continue;
        }
        let (Some(h), Some(l)) = (digit(i + 1), digit(i + 2)) else {
            return Err(BadPath);
        };
        let b = (h * 16 + l) as u8;
        if b == 0 {
            return Err(BadPath);
        }
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push_str(&format!("{b:02X}"));
        }
        i += 3;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(raw: &str) -> Result<String, BadPath> {
        normalize(raw).map(Cow::into_owned)
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in ["/", "/items/42", "/a/b/", "/a.b/..c/.d"] {
            assert!(matches!(normalize(p), Ok(Cow::Borrowed(_))), "{p}");
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_kept_upper_case() {
        assert_eq!(n("/items/%7Et%41").unwrap(), "/items/~tA");
        assert_eq!(n("/a%2db%5F").unwrap(), "/a-b_");
        assert_eq!(n("/a%2fb%5cc%20d").unwrap(), "/a%2Fb%5Cc%20d");
        assert_eq!(n("/%e4%b8%ad").unwrap(), "/%E4%B8%AD");
        assert_eq!(n("/中文/%41").unwrap(), "/中文/A");
    }

    #[test]
    fn dot_segments_and_repeated_slashes() {
        assert_eq!(n("/a/./b/../c").unwrap(), "/a/c");
        assert_eq!(n("/../../etc").unwrap(), "/etc");
        assert_eq!(n("/a/%2e%2E/b").unwrap(), "/b");
        assert_eq!(n("//a///b//").unwrap(), "/a/b/");
        assert_eq!(n("/a/b/..").unwrap(), "/a/");
        assert_eq!(n("/a/.").unwrap(), "/a/");
        assert_eq!(n("/..").unwrap(), "/");
        // Encoded slashes are not separators: `..%2f` is one segment.
        assert_eq!(n("/s/..%2f..%2fadmin").unwrap(), "/s/..%2F..%2Fadmin");
    }

    #[test]
    fn the_query_is_kept_as_sent() {
        assert!(matches!(
            normalize_target("/a?b=%41"),
            Ok(Cow::Borrowed("/a?b=%41"))
        ));
        assert_eq!(
            normalize_target("/%41//b?x=%7E&y=./..").unwrap(),
            "/A/b?x=%7E&y=./.."
        );
        assert_eq!(normalize_target("?a"), Err(BadPath));
    }

    #[test]
    fn refused() {
        assert_eq!(n(""), Err(BadPath));
        assert_eq!(n("*"), Err(BadPath));
        assert_eq!(n("http://x/a"), Err(BadPath));
        assert_eq!(n("/a%00b"), Err(BadPath));
        // A `%` that starts no escape (decoding around it could make one).
        for bad in ["/100%", "/x%zz", "/x%4", "/X%f%33%0", "/%2%65"] {
            assert_eq!(n(bad), Err(BadPath), "{bad}");
        }
    }
}
