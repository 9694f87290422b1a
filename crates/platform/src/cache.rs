//! What every authenticated request reads, kept in memory: sessions, accounts, memberships,
//! organizations, API keys and the first page of a user's organizations (what `GET /auth/me`
//! shows), so that a request with a known credential touches neither the `sessions` namespace nor
//! the relational store.
//!
//! Exact, not eventually consistent: it is on only while this process is the only writer of the
//! platform records ([`PlatformOptions::cache_records`](crate::PlatformOptions), set from the data
//! directory's lock), and every method of [`Platform`](crate::Platform) that changes a session, an
//! organization, a membership or an API key forgets what it changed once it is committed. A read
//! that raced with such a change does not keep what it read: [`RecordCache::keep`] takes the
//! generation seen before the read, and every [`RecordCache::forget`] starts a new one.
//!
//! Bounded by bytes: past [`RecordCache::BUDGET`] (estimated from the entries' text), it starts
//! over empty.

use std::collections::HashMap;
use std::sync::Mutex;

use ledge_auth::Role;

use crate::page::Page;
use crate::records::{ApiKey, Organization, OrganizationWithRole, User};

/// A session as the cache keeps it: whose, and when it was last written to the namespace.
#[derive(Debug, Clone)]
pub(crate) struct CachedSession {
    pub user: User,
    pub seen: i64,
}

/// An API key with the hash its secret must match.
#[derive(Debug, Clone)]
pub(crate) struct CachedKey {
    pub token_hash: String,
    pub key: ApiKey,
}

#[derive(Debug, Default)]
struct Entries {
    generation: u64,
    bytes: usize,
    sessions: HashMap<String, CachedSession>,
    /// user id → organization id → the organization and the user's role in it (nested, so a lookup
    /// by two `&str` allocates nothing).
    memberships: HashMap<String, HashMap<String, (Organization, Role)>>,
    organizations: HashMap<String, Organization>,
    api_keys: HashMap<String, CachedKey>,
    /// user id → the first page of the user's organizations, with the page size it was read with.
    organizations_of: HashMap<String, (u32, Page<OrganizationWithRole>)>,
}

/// What changed, for [`RecordCache::forget`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    /// A session ended.
    Session(&'a str),
    /// An API key was revoked.
    ApiKey(&'a str),
    /// An organization or one of its memberships changed (created, renamed, deleted, restored,
    /// purged; a member joined, left or changed role): memberships, organizations, each user's
    /// organizations and keys go.
    Organizations,
}

#[derive(Debug)]
pub(crate) struct RecordCache {
    enabled: bool,
    entries: Mutex<Entries>,
}

/// A read's ticket: the generation before it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Generation(u64);

/// The per-entry overhead counted besides the entries' text (map slot, struct, allocations).
const ENTRY_OVERHEAD: usize = 160;

fn user_bytes(user: &User) -> usize {
    user.id.len() + user.email.len() + user.name.len()
}

fn organization_bytes(org: &Organization) -> usize {
    org.id.len() + org.slug.len() + org.name.len()
}

impl RecordCache {
    /// At most this many bytes of entries; then the cache starts over.
    pub const BUDGET: usize = 1 << 20;

    pub fn new(enabled: bool) -> RecordCache {
        RecordCache { enabled, entries: Mutex::new(Entries::default()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn generation(&self) -> Generation {
        Generation(if self.enabled { self.entries().generation } else { 0 })
    }

    /// The session `id` of `user`, if it is cached.
    pub fn session(&self, id: &str, user: &str) -> Option<CachedSession> {
        if !self.enabled {
            return None;
        }
        self.entries().sessions.get(id).filter(|s| s.user.id == user).cloned()
    }

    pub fn membership(&self, user: &str, org: &str) -> Option<(Organization, Role)> {
        if !self.enabled {
            return None;
        }
        self.entries().memberships.get(user)?.get(org).cloned()
    }

    pub fn organization(&self, id: &str) -> Option<Organization> {
        if !self.enabled {
            return None;
        }
        self.entries().organizations.get(id).cloned()
    }

    pub fn api_key(&self, id: &str) -> Option<CachedKey> {
        if !self.enabled {
            return None;
        }
        self.entries().api_keys.get(id).cloned()
    }

    /// The first page of `user`'s organizations, if it was read with the same page size.
    pub fn organizations_of(&self, user: &str, limit: u32) -> Option<Page<OrganizationWithRole>> {
        if !self.enabled {
            return None;
        }
        self.entries().organizations_of.get(user).filter(|(l, _)| *l == limit).map(|(_, page)| page.clone())
    }

    /// Keeps what a read that started at `generation` found, unless something changed since.
    fn keep(&self, generation: Generation, bytes: usize, put: impl FnOnce(&mut Entries)) {
        if !self.enabled {
            return;
        }
        let mut entries = self.entries();
        if entries.generation != generation.0 {
            return;
        }
        if entries.bytes + bytes > Self::BUDGET {
            let next = entries.generation;
            *entries = Entries { generation: next, ..Entries::default() };
        }
        entries.bytes += bytes;
        put(&mut entries);
    }

    pub fn keep_session(&self, generation: Generation, id: &str, session: CachedSession) {
        let bytes = id.len() + user_bytes(&session.user) + ENTRY_OVERHEAD;
        self.keep(generation, bytes, |e| {
            e.sessions.insert(id.to_string(), session);
        });
    }

    pub fn keep_membership(&self, generation: Generation, user: &str, org: Organization, role: Role) {
        let bytes = user.len() + org.id.len() + organization_bytes(&org) + ENTRY_OVERHEAD;
        self.keep(generation, bytes, |e| {
            e.memberships.entry(user.to_string()).or_default().insert(org.id.clone(), (org, role));
        });
    }

    pub fn keep_organization(&self, generation: Generation, org: Organization) {
        let bytes = organization_bytes(&org) + ENTRY_OVERHEAD;
        self.keep(generation, bytes, |e| {
            e.organizations.insert(org.id.clone(), org);
        });
    }

    pub fn keep_api_key(&self, generation: Generation, key: CachedKey) {
        let k = &key.key;
        let bytes = key.token_hash.len()
            + k.id.len()
            + k.org_id.len()
            + k.name.len()
            + k.prefix.len()
            + k.created_by.len()
            + ENTRY_OVERHEAD;
        self.keep(generation, bytes, |e| {
            e.api_keys.insert(key.key.id.clone(), key);
        });
    }

    pub fn keep_organizations_of(
        &self,
        generation: Generation,
        user: &str,
        limit: u32,
        page: Page<OrganizationWithRole>,
    ) {
        let items: usize =
            page.items.iter().map(|o| organization_bytes(&o.organization) + ENTRY_OVERHEAD).sum();
        let bytes = user.len() + items + ENTRY_OVERHEAD;
        self.keep(generation, bytes, |e| {
            e.organizations_of.insert(user.to_string(), (limit, page));
        });
    }

    /// Forgets what `change` made stale, and makes every read in flight forget what it found.
    pub fn forget(&self, change: Change<'_>) {
        if !self.enabled {
            return;
        }
        let mut entries = self.entries();
        entries.generation += 1;
        match change {
            Change::Session(id) => {
                entries.sessions.remove(id);
            }
            Change::ApiKey(id) => {
                entries.api_keys.remove(id);
            }
            Change::Organizations => {
                entries.memberships.clear();
                entries.organizations.clear();
                entries.organizations_of.clear();
                entries.api_keys.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: &str) -> Organization {
        Organization {
            id: id.into(),
            slug: id.into(),
            name: id.into(),
            created_at: 1,
            updated_at: 1,
            deleted_at: None,
        }
    }

    #[test]
    fn a_read_that_raced_with_a_change_is_not_kept() {
        let cache = RecordCache::new(true);
        let before = cache.generation();
        cache.forget(Change::Organizations);
        cache.keep_organization(before, org("o1"));
        assert!(cache.organization("o1").is_none());
        cache.keep_organization(cache.generation(), org("o1"));
        assert_eq!(cache.organization("o1"), Some(org("o1")));
    }

    #[test]
    fn a_change_to_organizations_forgets_memberships_and_organizations() {
        let cache = RecordCache::new(true);
        cache.keep_membership(cache.generation(), "u1", org("o1"), Role::Admin);
        cache.keep_organization(cache.generation(), org("o1"));
        assert!(cache.membership("u1", "o1").is_some());
        cache.forget(Change::Organizations);
        assert!(cache.membership("u1", "o1").is_none());
        assert!(cache.organization("o1").is_none());
    }

    #[test]
    fn a_users_first_page_of_organizations_is_kept_per_page_size_until_organizations_change() {
        let cache = RecordCache::new(true);
        let page = Page {
            items: vec![OrganizationWithRole { organization: org("o1"), role: Role::Member, joined_at: 5 }],
            next_cursor: None,
        };
        cache.keep_organizations_of(cache.generation(), "u1", 100, page.clone());
        assert_eq!(cache.organizations_of("u1", 100), Some(page));
        assert_eq!(cache.organizations_of("u1", 20), None, "another page size is another page");
        assert_eq!(cache.organizations_of("u2", 100), None);
        cache.forget(Change::Organizations);
        assert_eq!(cache.organizations_of("u1", 100), None);
    }

    #[test]
    fn past_its_budget_the_cache_starts_over() {
        let cache = RecordCache::new(true);
        let mut kept = 0;
        for n in 0.. {
            cache.keep_organization(cache.generation(), org(&format!("org-{n}")));
            if cache.organization("org-0").is_none() {
                break;
            }
            kept = n + 1;
        }
        assert!(kept > 1000, "{kept}");
        assert!(kept * (ENTRY_OVERHEAD + 15) <= RecordCache::BUDGET, "{kept}");
    }

    #[test]
    fn off_keeps_nothing() {
        let cache = RecordCache::new(false);
        cache.keep_organization(cache.generation(), org("o1"));
        assert!(cache.organization("o1").is_none());
    }
}
