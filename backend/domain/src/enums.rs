//! Enumerations that real partners extend beyond the specification.
//!
//! A partner that sends `"CHADEMO_3"` or `"SOLAR_CARPORT"` must not make us drop the whole object, so
//! every such enum keeps the values it does not know in an `Other(String)` variant. Serialised values
//! are the upper-case wire names, which every roaming protocol we speak shares closely enough; a
//! protocol crate translates where it does not.

/// Declares an enum whose unknown values are kept as `Other(String)`, with serde as plain strings.
macro_rules! open_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value outside the specification, kept as received.
            Other(String),
        }

        impl $name {
            /// Every value the specification defines, in its order.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire name of this value.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Other(value) => value.as_str(),
                }
            }

            /// Parses a wire name; unknown names become `Other` (compared case-insensitively).
            pub fn parse(value: &str) -> Self {
                $(if value.eq_ignore_ascii_case($wire) { return $name::$variant; })+
                $name::Other(value.to_owned())
            }

            /// Whether this value is one the specification defines.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(value))
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::parse(&value))
            }
        }
    };
}

pub(crate) use open_enum;
