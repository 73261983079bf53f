//! Percent-encoding as the Huawei user guide specifies it for values the gateway places
//! in a backend path or query (§5.2.1, constant parameters), and decoding
//! of the values callers send.

use std::borrow::Cow;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

/// PATH values: ASCII 0-31, `?`, `>`, `<`, `/`, `%`, `#`, `"`, `[`, `\`,
/// `]`, `^`, `` ` ``, `{`, `|`, `}`, white space, ASCII 127-255.
/// (`CONTROLS` is 0-31 and 127; bytes over 127 are always encoded.)
pub const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'?')
    .add(b'>')
    .add(b'<')
    .add(b'/')
    .add(b'%')
    .add(b'#')
    .add(b'"')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// QUERY values: ASCII 0-31, `>`, `=`, `<`, `+`, `&`, `%`, `#`, `"`, `[`,
/// `\`, `]`, `^`, `` ` ``, `{`, `|`, `}`, white space, ASCII 127-255. `&`
/// and `=` being encoded is what keeps a value from becoming a second
/// parameter.
pub const QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'>')
    .add(b'=')
    .add(b'<')
    .add(b'+')
    .add(b'&')
    .add(b'%')
    .add(b'#')
    .add(b'"')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Appends `value` encoded with `set`.
pub fn push_encoded(out: &mut String, value: &str, set: &'static AsciiSet) {
    for piece in utf8_percent_encode(value, set) {
        out.push_str(piece);
    }
}

/// A path segment as sent → its value (`%XX` decoded; `+` is literal).
/// `None` when the bytes are not UTF-8.
pub fn decode_path(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains('%') {
        return Some(Cow::Borrowed(raw));
    }
    percent_decode_str(raw).decode_utf8().ok()
}

/// A query key or value as sent → its value (`+` is a space, `%XX`
/// decoded, as form encoding and the vendors' SDKs have it).
pub fn decode_query(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.contains(['%', '+']) {
        return Some(Cow::Borrowed(raw));
    }
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|v| Cow::Owned(v.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(value: &str, set: &'static AsciiSet) -> String {
        let mut s = String::new();
        push_encoded(&mut s, value, set);
        s
    }

    #[test]
    fn seed_example_and_every_listed_path_character() {
        assert_eq!(enc("[apig]", PATH), "%5Bapig%5D");
        assert_eq!(enc("[apig]", QUERY), "%5Bapig%5D");
        let listed = "?></%#\"[\\]^`{|} \t\u{1}\u{7f}";
        assert_eq!(
            enc(listed, PATH),
            "%3F%3E%3C%2F%25%23%22%5B%5C%5D%5E%60%7B%7C%7D%20%09%01%7F"
        );
        // Not listed for PATH: kept as is.
        assert_eq!(
            enc("a=b&c+d;e:f@g!$'()*,~._-", PATH),
            "a=b&c+d;e:f@g!$'()*,~._-"
        );
        // 128-255 (as UTF-8 bytes)
        assert_eq!(enc("é", PATH), "%C3%A9");
    }

    #[test]
    fn every_listed_query_character() {
        let listed = "><=+&%#\"[\\]^`{|} \n";
        assert_eq!(
            enc(listed, QUERY),
            "%3E%3C%3D%2B%26%25%23%22%5B%5C%5D%5E%60%7B%7C%7D%20%0A"
        );
        // Not listed for QUERY: `/` and `?` are legal inside a query value.
        assert_eq!(
            enc("a/b?c;d:e@f!$'()*,~._-", QUERY),
            "a/b?c;d:e@f!$'()*,~._-"
        );
    }

    #[test]
    fn decoding() {
        assert_eq!(decode_path("a+b%20c").unwrap(), "a+b c");
        assert_eq!(decode_query("a+b%20c%2B").unwrap(), "a b c+");
        assert_eq!(decode_path("%E4%BD%A0").unwrap(), "你");
        assert!(decode_path("%FF").is_none());
        assert!(matches!(
            decode_query("plain"),
            Some(Cow::Borrowed("plain"))
        ));
    }
}
