//! Roles of organization members and scopes of API keys.

use std::fmt;

/// A member's role in an organization, ordered: `Member < Admin < Owner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Member, Role::Admin, Role::Owner];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|role| role.as_str() == text)
    }

    /// The scopes a signed-in member holds by role: members read and chat, admins and owners
    /// also change repositories and administer the organization.
    pub fn scopes(self) -> Scopes {
        match self {
            Role::Member => Scopes::of(&[Scope::SearchRead, Scope::ChatWrite, Scope::ReposRead]),
            Role::Admin | Role::Owner => Scopes::all(),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    SearchRead,
    ChatWrite,
    ReposRead,
    ReposWrite,
    Admin,
}

impl Scope {
    pub const ALL: &'static [Scope] =
        &[Scope::SearchRead, Scope::ChatWrite, Scope::ReposRead, Scope::ReposWrite, Scope::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::SearchRead => "search:read",
            Scope::ChatWrite => "chat:write",
            Scope::ReposRead => "repos:read",
            Scope::ReposWrite => "repos:write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.iter().copied().find(|scope| scope.as_str() == text)
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes (a bit set: cheap to copy and check on every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Scopes(u8);

impl Scopes {
    pub const fn empty() -> Scopes {
        Scopes(0)
    }

    pub fn all() -> Scopes {
        Scopes::of(Scope::ALL)
    }

    pub fn of(scopes: &[Scope]) -> Scopes {
        Scopes(scopes.iter().fold(0, |bits, s| bits | s.bit()))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in `self`.
    pub fn covers(self, other: Scopes) -> bool {
        other.0 & !self.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.iter().copied().filter(move |s| self.contains(*s))
    }

    /// Space-separated, in the canonical order (how the store keeps them).
    pub fn to_text(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    /// Parses space-separated scopes; the unknown one is the error.
    pub fn parse_text(text: &str) -> Result<Scopes, String> {
        let mut scopes = Scopes::empty();
        for word in text.split_ascii_whitespace() {
            scopes.0 |= Scope::parse(word).ok_or_else(|| word.to_string())?.bit();
        }
        Ok(scopes)
    }
}
