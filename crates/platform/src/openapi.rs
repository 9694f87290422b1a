//! Schemas (for the HTTP API's OpenAPI document, feature `openapi`) of the `ledge-auth` values the
//! records show as text: their allowed values are read from `Role::ALL` and `Scope::ALL`, so the
//! document cannot list a role or scope that does not exist.

use std::borrow::Cow;

use ledge_auth::{Role, Scope};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

fn text_enum(description: &str, values: impl Iterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// A member's role: `member`, `admin` or `owner`.
#[derive(Debug)]
pub struct RoleName;

impl PartialSchema for RoleName {
    fn schema() -> RefOr<Schema> {
        text_enum("A member's role in an organization.", Role::ALL.iter().map(|r| r.as_str()))
    }
}

impl ToSchema for RoleName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Role")
    }
}

/// An API key's scope.
#[derive(Debug)]
pub struct ScopeName;

impl PartialSchema for ScopeName {
    fn schema() -> RefOr<Schema> {
        text_enum("What an API key may do.", Scope::ALL.iter().map(|s| s.as_str()))
    }
}

impl ToSchema for ScopeName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Scope")
    }
}
