//! Where a redirect after log-in may go: the safe `next` check.

use percent_encoding::percent_decode_str;
use rocket::http::uri::Reference;

/// `next` if it is a path on this site, else `fallback`: the only safe target for the
/// redirect after log-in.
///
/// A local path starts with a single `/`. Anything that a browser could read as another
/// site is refused, in any encoding: `//host`, `/\host`, `http:`, `javascript:` (no leading
/// slash), percent-encoded variants such as `/%2F/host`, and control characters or
/// whitespace that browsers strip (`/\t/host`). So is what Rocket's [`Redirect::to`]
/// cannot carry (`/<`, raw non-ASCII), which would turn the log-in into a `500`.
///
/// [`Redirect::to`]: rocket::response::Redirect::to
///
/// # Example
///
/// ```
/// use rocket_server_sessions::safe_next;
///
/// assert_eq!(safe_next(Some("/cart?step=2"), "/dashboard"), "/cart?step=2");
/// assert_eq!(safe_next(Some("//evil.example"), "/dashboard"), "/dashboard");
/// assert_eq!(safe_next(Some("/%2F%2Fevil.example"), "/dashboard"), "/dashboard");
/// assert_eq!(safe_next(None, "/dashboard"), "/dashboard");
/// ```
pub fn safe_next<'a>(next: Option<&'a str>, fallback: &'a str) -> &'a str {
    next.filter(|next| is_local_path(next)).unwrap_or(fallback)
}

pub(crate) fn is_local_path(next: &str) -> bool {
    // Only what Rocket's `Redirect::to` accepts: anything else would fail the redirect.
    if Reference::parse(next).is_err() {
        return false;
    }

    // Check the path as given and as every level of percent-decoding would read it. The
    // query and fragment cannot change the site, so `?q=a%20b` is fine.
    let mut text = next.to_string();
    for _ in 0..4 {
        let path = text.split(['?', '#']).next().unwrap_or_default();
        let local = path.starts_with('/')
            && !path.starts_with("//")
            && !path.starts_with("/\\")
            && !path
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\');
        if !local {
            return false;
        }

        match percent_decode_str(&text).decode_utf8() {
            Ok(decoded) if decoded == text => return true,
            Ok(decoded) => text = decoded.into_owned(),
            Err(_) => return false,
        }
    }

    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_followed() {
        for next in [
            "/",
            "/dashboard",
            "/a/b?c=d&e=%2F",
            "/search?q=http://x",
            "/search?q=a%20b",
            "/caf%C3%A9",
            "/a#section",
        ] {
            assert_eq!(safe_next(Some(next), "/home"), next, "{next:?}");
            assert!(
                Reference::parse(next).is_ok(),
                "Redirect::to refuses {next:?}"
            );
        }
    }

    #[test]
    fn anything_that_leaves_the_site_falls_back() {
        let cases = [
            "",
            "dashboard",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "http://evil.example",
            "https://evil.example",
            "HTTPS://evil.example",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,x",
            "/%2Fevil.example",
            "/%2fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%252F%252Fevil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/ /evil.example",
            "/%0d%0aSet-Cookie:x",
            "/%ff%fe",
            " /dashboard",
            // Not a URI Rocket can redirect to.
            "/<script>",
            "/\"",
            "/é",
            "/a b",
        ];
        for next in cases {
            assert_eq!(safe_next(Some(next), "/home"), "/home", "{next:?}");
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        /// Strings built from what open redirects are made of.
        fn next() -> impl Strategy<Value = String> {
            let piece = prop_oneof![
                Just("/".to_string()),
                Just("\\".to_string()),
                Just("//".to_string()),
                Just("%2F".to_string()),
                Just("%2f".to_string()),
                Just("%5C".to_string()),
                Just("%25".to_string()),
                Just("%09".to_string()),
                Just("%00".to_string()),
                Just(":".to_string()),
                Just("@".to_string()),
                Just(".".to_string()),
                Just("?".to_string()),
                Just("#".to_string()),
                Just("\t".to_string()),
                Just("\n".to_string()),
                Just(" ".to_string()),
                Just("http".to_string()),
                Just("javascript".to_string()),
                Just("evil.example".to_string()),
                Just("é".to_string()),
                "[\\x00-\\x7f]",
            ];
            proptest::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
        }

        proptest! {
            #![proptest_config(crate::proptest_cases::config())]

            /// Checked against a WHATWG URL parser, as browsers resolve a `Location`:
            /// whatever `safe_next` keeps stays on the page's origin.
            #[test]
            fn prop_what_safe_next_keeps_stays_on_the_site(next in next()) {
                let page = url::Url::parse("https://app.example/login?next=x").unwrap();
                if safe_next(Some(&next), "/fallback") == next {
                    let target = page.join(&next);
                    prop_assert!(target.is_ok(), "{next:?} does not resolve");
                    let target = target.unwrap();
                    prop_assert_eq!(target.origin(), page.origin(), "{:?} leaves for {}", next, target);
                    prop_assert!(rocket::response::Redirect::to(next.clone()).respond_to_is_ok());
                }
            }
        }

        trait RespondsOk {
            fn respond_to_is_ok(self) -> bool;
        }

        impl RespondsOk for rocket::response::Redirect {
            /// Whether Rocket can send the redirect (it answers 500 for a bad URI).
            fn respond_to_is_ok(self) -> bool {
                let client = rocket::local::blocking::Client::debug_with(vec![]).unwrap();
                let request = client.get("/");
                rocket::response::Responder::respond_to(self, request.inner()).is_ok()
            }
        }
    }
}
