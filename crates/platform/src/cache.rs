//! What every authenticated request reads, kept in memory: sessions, accounts, memberships,
//! organizations and API keys, so that a request with a known credential touches neither the
//! `sessions` namespace nor the relational store; and the first page of the lists read most (a
//! user's organizations, what `GET /auth/me` shows; an organization's members and API keys).
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
use crate::records::{ApiKey, Member, Organization, OrganizationWithRole, User};

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
pub(crate) struct Entries {
    generation: u64,
    bytes: usize,
    sessions: HashMap<String, CachedSession>,
    /// user id → organization id → the organization and the user's role in it (nested, so a lookup
    /// by two `&str` allocates nothing).
    memberships: HashMap<String, HashMap<String, (Organization, Role)>>,
    organizations: HashMap<String, Organization>,
    api_keys: HashMap<String, CachedKey>,
    /// user id → the first page of the user's organizations.
    organizations_of: FirstPages<OrganizationWithRole>,
    /// organization id → the first page of its members.
    members: FirstPages<Member>,
    /// organization id → the first page of its API keys.
    api_key_pages: FirstPages<ApiKey>,
}

/// The first page of a list per owner (a user or an organization), with the page size it was read
/// with: another size is another page.
#[derive(Debug)]
pub(crate) struct FirstPages<T>(HashMap<String, (u32, Page<T>)>);

/// A record whose lists' first pages are kept: where they live, and what one weighs.
pub(crate) trait Listed: Clone {
    fn pages(entries: &Entries) -> &FirstPages<Self>;
    fn pages_mut(entries: &mut Entries) -> &mut FirstPages<Self>;
    /// The bytes of its text, as the budget counts them.
    fn bytes(&self) -> usize;
}

/// A user's organizations, by user id.
impl Listed for OrganizationWithRole {
    fn pages(entries: &Entries) -> &FirstPages<Self> {
        &entries.organizations_of
    }
    fn pages_mut(entries: &mut Entries) -> &mut FirstPages<Self> {
        &mut entries.organizations_of
    }
    fn bytes(&self) -> usize {
        organization_bytes(&self.organization)
    }
}

/// An organization's members, by organization id.
impl Listed for Member {
    fn pages(entries: &Entries) -> &FirstPages<Self> {
        &entries.members
    }
    fn pages_mut(entries: &mut Entries) -> &mut FirstPages<Self> {
        &mut entries.members
    }
    fn bytes(&self) -> usize {
        self.user_id.len() + self.email.len() + self.name.len()
    }
}

/// An organization's API keys, by organization id.
impl Listed for ApiKey {
    fn pages(entries: &Entries) -> &FirstPages<Self> {
        &entries.api_key_pages
    }
    fn pages_mut(entries: &mut Entries) -> &mut FirstPages<Self> {
        &mut entries.api_key_pages
    }
    fn bytes(&self) -> usize {
        api_key_bytes(self)
    }
}

impl<T> Default for FirstPages<T> {
    fn default() -> Self {
        FirstPages(HashMap::new())
    }
}

impl<T: Clone> FirstPages<T> {
    fn get(&self, owner: &str, limit: u32) -> Option<Page<T>> {
        self.0.get(owner).filter(|(l, _)| *l == limit).map(|(_, page)| page.clone())
    }

    fn put(&mut self, owner: &str, limit: u32, page: Page<T>) {
        self.0.insert(owner.to_string(), (limit, page));
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// What changed, for [`RecordCache::forget`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    /// A session ended.
    Session(&'a str),
    /// An API key was revoked or its last use recorded: it and every page of keys go.
    ApiKey(&'a str),
    /// An API key was created: every page of keys goes.
    ApiKeyCreated,
    /// An organization or one of its memberships changed (created, renamed, deleted, restored,
    /// purged; a member joined, left or changed role): memberships, organizations, keys and every
    /// cached page go.
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

fn api_key_bytes(k: &ApiKey) -> usize {
    k.id.len() + k.org_id.len() + k.name.len() + k.prefix.len() + k.created_by.len()
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

    /// The first page of `owner`'s list of `T`, if it was read with the same page size.
    pub fn first_page<T: Listed>(&self, owner: &str, limit: u32) -> Option<Page<T>> {
        if !self.enabled {
            return None;
        }
        T::pages(&self.entries()).get(owner, limit)
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
        let bytes = key.token_hash.len() + api_key_bytes(&key.key) + ENTRY_OVERHEAD;
        self.keep(generation, bytes, |e| {
            e.api_keys.insert(key.key.id.clone(), key);
        });
    }

    pub fn keep_first_page<T: Listed>(&self, generation: Generation, owner: &str, limit: u32, page: Page<T>) {
        let items: usize = page.items.iter().map(|item| item.bytes() + ENTRY_OVERHEAD).sum();
        let bytes = owner.len() + items + ENTRY_OVERHEAD;
        self.keep(generation, bytes, |e| T::pages_mut(e).put(owner, limit, page));
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
                entries.api_key_pages.clear();
            }
            Change::ApiKeyCreated => entries.api_key_pages.clear(),
            Change::Organizations => {
                entries.memberships.clear();
                entries.organizations.clear();
                entries.organizations_of.clear();
                entries.members.clear();
                entries.api_key_pages.clear();
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
        cache.keep_first_page(cache.generation(), "u1", 100, page.clone());
        assert_eq!(cache.first_page("u1", 100), Some(page));
        assert_eq!(
            cache.first_page::<OrganizationWithRole>("u1", 20),
            None,
            "another page size is another page"
        );
        assert_eq!(cache.first_page::<OrganizationWithRole>("u2", 100), None);
        cache.forget(Change::Organizations);
        assert_eq!(cache.first_page::<OrganizationWithRole>("u1", 100), None);
    }

    #[test]
    fn pages_of_keys_go_when_a_key_is_created_used_or_revoked_and_pages_of_members_with_organizations() {
        let cache = RecordCache::new(true);
        fn empty<T>() -> Page<T> {
            Page { items: Vec::new(), next_cursor: None }
        }
        for change in [Change::ApiKeyCreated, Change::ApiKey("k1"), Change::Organizations] {
            cache.keep_first_page::<ApiKey>(cache.generation(), "o1", 20, empty());
            cache.keep_first_page::<Member>(cache.generation(), "o1", 20, empty());
            assert!(cache.first_page::<ApiKey>("o1", 20).is_some());
            cache.forget(change);
            assert!(cache.first_page::<ApiKey>("o1", 20).is_none(), "{change:?}");
            let members_stay = !matches!(change, Change::Organizations);
            assert_eq!(cache.first_page::<Member>("o1", 20).is_some(), members_stay, "{change:?}");
        }
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
