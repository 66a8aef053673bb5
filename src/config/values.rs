//! The cookie settings that are enums, and how durations are read: whole or fractional
//! seconds.

use std::fmt;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// When the session cookie is marked `Secure`: the `sessions.secure` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secure {
    /// `"auto"`: when the request came over TLS (or, with `proxy`, `X-Forwarded-Proto:
    /// https`).
    Auto,
    /// `true`: always.
    Always,
    /// `false`: never.
    Never,
}

/// The session cookie's `SameSite` attribute: the `sessions.same_site` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSitePolicy {
    /// `SameSite=Lax`: sent on top-level navigations from other sites, not on their
    /// subrequests or form posts.
    Lax,
    /// `SameSite=Strict`: sent only on requests from this site.
    Strict,
    /// `SameSite=None`: sent on every request; needs `secure`.
    None,
}

impl Serialize for Secure {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self {
            Secure::Auto => ser.serialize_str("auto"),
            Secure::Always => ser.serialize_bool(true),
            Secure::Never => ser.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for Secure {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = Secure;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"auto\"")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Secure, E> {
                Ok(if v { Secure::Always } else { Secure::Never })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secure, E> {
                match v {
                    "auto" => Ok(Secure::Auto),
                    // Environment variables arrive as text.
                    "true" => Ok(Secure::Always),
                    "false" => Ok(Secure::Never),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }

        de.deserialize_any(Visitor)
    }
}

/// (De)serializes a `Duration` as a number of seconds, whole or fractional.
pub(crate) mod seconds {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Duration, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_f64(value.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of seconds, such as 3600")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_secs)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Duration::try_from_secs_f64(v)
                    .map_err(|_| E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }

        de.deserialize_any(Visitor)
    }
}

/// (De)serializes an optional path as the path, or `false` for none.
/// An optional number of seconds: unset is `None`.
pub(crate) mod optional_seconds {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, ser: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::seconds::serialize(value, ser),
            None => ser.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
        super::seconds::deserialize(de).map(Some)
    }
}

pub(crate) mod path_or_false {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<String>, ser: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(path) => ser.serialize_str(path),
            None => ser.serialize_bool(false),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
        struct Visitor;

        impl de::Visitor<'_> for Visitor {
            type Value = Option<String>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a path such as \"/login\", or false")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                match v {
                    false => Ok(None),
                    true => Err(E::invalid_value(de::Unexpected::Bool(v), &self)),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    // Environment variables arrive as text.
                    "false" => Ok(None),
                    path => Ok(Some(path.to_owned())),
                }
            }
        }

        de.deserialize_any(Visitor)
    }
}

/// Whether the cookie name `name` starts with `prefix`, as browsers compare them: without
/// regard to case.
pub(crate) fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}
