//! Object ids in ledge's terms: `CommitId` and `BlobId`, hex-printed, so callers never name gitoxide types.

use std::fmt;
use std::str::FromStr;

use crate::Error;

macro_rules! object_id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) gix::ObjectId);

        impl $name {
            /// Parses a full 40-character hexadecimal SHA-1.
            pub fn from_hex(hex: &str) -> Result<Self, Error> {
                if hex.len() != 40 {
                    return Err(Error::InvalidInput {
                        field: $field,
                        message: format!("expected 40 hexadecimal characters, got {:?}", hex),
                    });
                }
                gix::ObjectId::from_hex(hex.as_bytes()).map(Self).map_err(|_| Error::InvalidInput {
                    field: $field,
                    message: format!("not a hexadecimal object id: {:?}", hex),
                })
            }

            /// The id as 40 lowercase hexadecimal characters.
            pub fn to_hex(&self) -> String {
                self.0.to_hex().to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.to_hex(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::from_hex(s)
            }
        }
    };
}

object_id_type!(
    /// The id of a commit (what a GitHub push event calls `before` / `after`).
    CommitId,
    "commit"
);
object_id_type!(
    /// The id of a blob: one version of one file's content.
    BlobId,
    "blob"
);
