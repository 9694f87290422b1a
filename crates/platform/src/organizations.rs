//! Organizations, their members and invitations.
//!
//! The creator of an organization is its owner. Roles are owner > admin > member: admins manage
//! members and invitations, only owners grant or take away the owner role or delete the
//! organization, and the last owner can neither leave nor be demoted. A deleted organization is
//! kept for [`PlatformOptions::deletion_grace`](crate::PlatformOptions), during which its owners can
//! restore it; meanwhile it answers 404 like one that never existed, and its slug stays taken.
//! Past the grace period it is purged with every record it owns, the next time an organization is
//! created or deleted ([`Platform::purge_deleted_organizations`]) — once the index of its
//! connected repositories is removed.

use ledge_db::Record as _;
use ledge_db::sqlx;
use std::time::Duration;

use ledge_auth::{Email, OpaqueToken, Role, TokenKind};
use sqlx::Row as _;

use crate::audit::action;
use crate::cache::Change;
use crate::error::{PlatformError, Result};
use crate::page::{Cursor, Page, PageRequest};
use crate::records::{Invitation, Member, Organization, OrganizationWithRole, User, role_of};
use crate::repositories::RemovedRepository;
use crate::{Access, Platform, ms, new_id};

const MAX_NAME_CHARS: usize = 100;
/// Longest invitation lifetime a caller may ask for.
pub const MAX_INVITATION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(PlatformError::invalid(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(name.to_string())
}

/// Whether `slug` is 2-40 characters of `[a-z0-9-]`, not starting or ending with `-`.
pub fn valid_slug(slug: &str) -> bool {
    (2..=40).contains(&slug.len())
        && slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// A slug made from a name: lower case, runs of other characters as one `-`.
fn slug_of(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 32 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.len() < 2 { format!("org-{slug}") } else { slug }
}

impl Platform {
    /// Creates an organization owned by `user`. Without a `slug`, one is made from the name.
    pub async fn create_organization(
        &self,
        user: &User,
        name: &str,
        slug: Option<&str>,
    ) -> Result<OrganizationWithRole> {
        let name = check_name(name)?;
        let id = new_id();
        let (slug, chosen) = match slug {
            Some(slug) => {
                let slug = slug.trim();
                if !valid_slug(slug) {
                    return Err(PlatformError::invalid(
                        "slug",
                        "must be 2 to 40 characters of a-z, 0-9 and '-', not starting or ending with '-'",
                    ));
                }
                (slug.to_string(), true)
            }
            None => (slug_of(&name), false),
        };
        // Organizations past their grace period give their slugs back first.
        self.purge_deleted_organizations().await?;
        let now = self.now_ms();
        let mut tx = self.db.pool().begin().await?;
        // A made-up slug that is taken gets a suffix from the (unique) id; a chosen one does not.
        let mut candidates = vec![slug.clone()];
        if !chosen {
            candidates.push(format!("{slug}-{}", &id[id.len() - 6..]));
        }
        let mut inserted = 0;
        let mut slug = slug;
        for candidate in candidates {
            slug = candidate;
            inserted = sqlx::query(
                "INSERT INTO organizations (id, slug, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (slug) DO NOTHING",
            )
            .bind(&id)
            .bind(&slug)
            .bind(&name)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                break;
            }
        }
        if inserted == 0 {
            return Err(PlatformError::Conflict {
                field: Some("slug"),
                detail: format!("the slug {slug:?} is taken"),
            });
        }
        sqlx::query("INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(&user.id)
            .bind(Role::Owner.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.cache.forget(Change::Organizations);
        self.audit(&id, Some(&user.id), action::ORGANIZATION_CREATED, Some(&id), None).await?;
        let organization =
            Organization { id, slug, name, created_at: now, updated_at: now, deleted_at: None };
        Ok(OrganizationWithRole { organization, role: Role::Owner, joined_at: now })
    }

    /// The organization `id` unless it is deleted.
    pub async fn organization(&self, id: &str) -> Result<Option<Organization>> {
        if let Some(org) = self.cache.organization(id) {
            return Ok(Some(org));
        }
        let generation = self.cache.generation();
        let sql = format!(
            "SELECT {} FROM organizations o WHERE o.id = $1 AND o.deleted_at IS NULL",
            Organization::COLUMNS
        );
        let row = self.db.row(&sql, &[id.into()]).await?;
        let org = row.as_ref().map(Organization::from_row).transpose()?;
        if let Some(org) = &org {
            self.cache.keep_organization(generation, org.clone());
        }
        Ok(org)
    }

    /// The organizations `user` belongs to, in the order joined.
    pub async fn organizations_of(
        &self,
        user: &User,
        page: &PageRequest,
    ) -> Result<Page<OrganizationWithRole>> {
        // The first page is what `GET /auth/me` shows on every call: kept while nothing changes.
        self.first_page_cached(&user.id, page, self.read_organizations_of(user, page)).await
    }

    async fn read_organizations_of(
        &self,
        user: &User,
        page: &PageRequest,
    ) -> Result<Page<OrganizationWithRole>> {
        let (at, id) = page.bounds();
        let sql = format!(
            "SELECT {}, m.role, m.created_at AS joined_at FROM memberships m JOIN organizations o ON o.id = m.org_id
             WHERE m.user_id = $1 AND o.deleted_at IS NULL AND (m.created_at > $2 OR (m.created_at = $2 AND o.id > $3))
             ORDER BY m.created_at, o.id LIMIT $4",
            Organization::COLUMNS
        );
        let rows =
            self.db.rows(&sql, &[(&user.id).into(), at.into(), (&id).into(), page.fetch().into()]).await?;
        let items = rows
            .iter()
            .map(|row| {
                Ok(OrganizationWithRole {
                    organization: Organization::from_row(row)?,
                    role: role_of(row)?,
                    joined_at: row.field("joined_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::cut(items, page, |o| Cursor { at: o.joined_at, id: o.organization.id.clone() }))
    }

    /// Renames the organization.
    pub async fn update_organization(&self, access: &Access, name: &str) -> Result<Organization> {
        let name = check_name(name)?;
        let now = self.now_ms();
        sqlx::query(
            "UPDATE organizations SET name = $2, updated_at = $3 WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(&access.org.id)
        .bind(&name)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        self.cache.forget(Change::Organizations);
        self.audit(&access.org.id, Some(&access.actor), action::ORGANIZATION_UPDATED, None, Some(&name))
            .await?;
        Ok(Organization { name, updated_at: now, ..access.org.clone() })
    }

    /// Soft-deletes the organization (owners only): it answers 404 from now on and can be restored
    /// during the grace period.
    pub async fn delete_organization(&self, access: &Access) -> Result<()> {
        if !access.is_owner() {
            return Err(PlatformError::Forbidden("only an owner can delete the organization"));
        }
        sqlx::query(
            "UPDATE organizations SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(&access.org.id)
        .bind(self.now_ms())
        .execute(self.db.pool())
        .await?;
        self.cache.forget(Change::Organizations);
        self.options.repository_changes.bump();
        self.audit(&access.org.id, Some(&access.actor), action::ORGANIZATION_DELETED, None, None).await?;
        self.purge_deleted_organizations().await?;
        Ok(())
    }

    /// Removes the organizations deleted longer ago than the grace period, with their members,
    /// invitations, API keys, repositories, notification preferences, billing records and audit log;
    /// answers how many. The index of their repositories is removed first through
    /// [`PlatformOptions::index_removal`](crate::PlatformOptions); an organization whose
    /// repositories' index cannot be removed (no removal configured, or it failed) waits for a
    /// later purge.
    pub async fn purge_deleted_organizations(&self) -> Result<u64> {
        let before = self.now_ms().saturating_sub(ms(self.options.deletion_grace));
        let rows = sqlx::query(
            "SELECT o.slug, r.full_name FROM organizations o JOIN repositories r ON r.org_id = o.id
             WHERE o.deleted_at IS NOT NULL AND o.deleted_at <= $1 ORDER BY o.slug, r.full_name",
        )
        .bind(before)
        .fetch_all(self.db.pool())
        .await?;
        let repositories = rows
            .iter()
            .map(|row| {
                Ok(RemovedRepository { org_slug: row.try_get("slug")?, name: row.try_get("full_name")? })
            })
            .collect::<Result<Vec<_>>>()?;
        // Organizations with repositories are purged only once their index removal is queued.
        let with_repositories_too = if repositories.is_empty() {
            true
        } else {
            match &self.options.index_removal {
                Some(removal) => match removal.remove(&repositories).await {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::warn!(%error, "cannot remove the index of purged organizations' repositories; purging later");
                        false
                    }
                },
                None => false,
            }
        };
        let doomed = if with_repositories_too {
            "SELECT id FROM organizations WHERE deleted_at IS NOT NULL AND deleted_at <= $1"
        } else {
            "SELECT id FROM organizations o WHERE deleted_at IS NOT NULL AND deleted_at <= $1
               AND NOT EXISTS (SELECT 1 FROM repositories r WHERE r.org_id = o.id)"
        };
        let mut tx = self.db.pool().begin().await?;
        for table in [
            "memberships",
            "invitations",
            "api_keys",
            "repositories",
            "notification_preferences",
            "audit_log",
            "subscriptions",
            "usage_counters",
            "indexed_files",
            "billing_events",
        ] {
            let sql = format!("DELETE FROM {table} WHERE org_id IN ({doomed})");
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before).execute(&mut *tx).await?;
        }
        let sql = format!("DELETE FROM organizations WHERE id IN ({doomed})");
        let purged =
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        self.cache.forget(Change::Organizations);
        if purged > 0 {
            self.options.repository_changes.bump();
            tracing::info!(purged, "purged organizations past their deletion grace period");
        }
        Ok(purged)
    }

    /// Restores a deleted organization within its grace period (an owner of it only; anyone else,
    /// and an organization past its grace, reads as not found).
    pub async fn restore_organization(&self, user: &User, org_id: &str) -> Result<Organization> {
        let grace_start = self.now_ms().saturating_sub(ms(self.options.deletion_grace));
        let restored = sqlx::query(
            "UPDATE organizations SET deleted_at = NULL, updated_at = $3
             WHERE id = $1 AND deleted_at IS NOT NULL AND deleted_at > $4
               AND EXISTS (SELECT 1 FROM memberships m WHERE m.org_id = $1 AND m.user_id = $2 AND m.role = 'owner')",
        )
        .bind(org_id)
        .bind(&user.id)
        .bind(self.now_ms())
        .bind(grace_start)
        .execute(self.db.pool())
        .await?;
        self.cache.forget(Change::Organizations);
        if restored.rows_affected() != 1 {
            return Err(PlatformError::NotFound("organization"));
        }
        self.options.repository_changes.bump();
        self.audit(org_id, Some(&user.id), action::ORGANIZATION_RESTORED, None, None).await?;
        self.organization(org_id).await?.ok_or(PlatformError::NotFound("organization"))
    }

    /// One page of the members, in the order they joined.
    pub async fn members(&self, access: &Access, page: &PageRequest) -> Result<Page<Member>> {
        self.first_page_cached(&access.org.id, page, self.read_members(access, page)).await
    }

    async fn read_members(&self, access: &Access, page: &PageRequest) -> Result<Page<Member>> {
        let (at, id) = page.bounds();
        let rows = self
            .db
            .rows(
                "SELECT m.user_id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
                 WHERE m.org_id = $1 AND (m.created_at > $2 OR (m.created_at = $2 AND m.user_id > $3))
                 ORDER BY m.created_at, m.user_id LIMIT $4",
                &[(&access.org.id).into(), at.into(), (&id).into(), page.fetch().into()],
            )
            .await?;
        let members = rows
            .iter()
            .map(|row| {
                Ok(Member {
                    user_id: row.field("user_id")?,
                    email: row.field("email")?,
                    name: row.field("name")?,
                    role: role_of(row)?,
                    joined_at: row.field("created_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::cut(members, page, Member::cursor))
    }

    /// Changes a member's role. Only owners grant or take away the owner role; the last owner
    /// cannot be demoted.
    pub async fn change_role(&self, access: &Access, user_id: &str, role: Role) -> Result<Member> {
        let mut tx = self.db.pool().begin().await?;
        // Writing the organization's row first serializes every membership change of the
        // organization (a row lock on Postgres, the write lock on SQLite), so two owners demoting
        // each other cannot both pass the last-owner check.
        lock_organization(&mut tx, &access.org.id, self.now_ms()).await?;
        let current = member_role(&mut tx, &access.org.id, user_id).await?;
        if (role == Role::Owner || current == Role::Owner) && !access.is_owner() {
            return Err(PlatformError::Forbidden("only an owner can grant or take away the owner role"));
        }
        if current == Role::Owner && role != Role::Owner && owners(&mut tx, &access.org.id).await? <= 1 {
            return Err(PlatformError::LastOwner);
        }
        sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
            .bind(&access.org.id)
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.cache.forget(Change::Organizations);
        let detail = format!("{current} -> {role}");
        self.audit(
            &access.org.id,
            Some(&access.actor),
            action::MEMBER_ROLE_CHANGED,
            Some(user_id),
            Some(&detail),
        )
        .await?;
        self.member(&access.org.id, user_id).await?.ok_or(PlatformError::NotFound("member"))
    }

    /// Removes a member. Anyone may leave; removing someone else takes an admin, removing an owner
    /// takes an owner; the last owner can do neither.
    pub async fn remove_member(&self, access: &Access, user_id: &str) -> Result<()> {
        let leaving = access.role.is_some() && access.actor == user_id;
        if !leaving && access.role.is_some_and(|r| r < Role::Admin) {
            return Err(PlatformError::Forbidden("only an admin can remove other members"));
        }
        let mut tx = self.db.pool().begin().await?;
        lock_organization(&mut tx, &access.org.id, self.now_ms()).await?;
        let current = member_role(&mut tx, &access.org.id, user_id).await?;
        if !leaving && current == Role::Owner && !access.is_owner() {
            return Err(PlatformError::Forbidden("only an owner can remove an owner"));
        }
        if current == Role::Owner && owners(&mut tx, &access.org.id).await? <= 1 {
            return Err(PlatformError::LastOwner);
        }
        sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(&access.org.id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.cache.forget(Change::Organizations);
        self.audit(&access.org.id, Some(&access.actor), action::MEMBER_REMOVED, Some(user_id), None).await
    }

    /// One member of the organization.
    pub async fn member(&self, org_id: &str, user_id: &str) -> Result<Option<Member>> {
        let row = sqlx::query(
            "SELECT m.user_id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.org_id = $1 AND m.user_id = $2",
        )
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|row| {
            Ok(Member {
                user_id: row.try_get("user_id")?,
                email: row.try_get("email")?,
                name: row.try_get("name")?,
                role: role_of(&row)?,
                joined_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Invites `email` to join as `role`; answers the invitation and its token (shown once). Only
    /// owners invite owners.
    pub async fn create_invitation(
        &self,
        access: &Access,
        email: &str,
        role: Role,
        ttl: Option<Duration>,
    ) -> Result<(Invitation, String)> {
        let email = Email::parse(email).map_err(|e| PlatformError::invalid("email", e.to_string()))?;
        if role == Role::Owner && !access.is_owner() {
            return Err(PlatformError::Forbidden("only an owner can invite an owner"));
        }
        let ttl = ttl.unwrap_or(self.options.invitation_ttl);
        if ttl.is_zero() || ttl > MAX_INVITATION_TTL {
            return Err(PlatformError::invalid("expires_in_hours", "must be 1 to 720 hours"));
        }
        let token = OpaqueToken::generate(TokenKind::Invitation);
        let now = self.now_ms();
        let invitation = Invitation {
            id: token.id.clone(),
            org_id: access.org.id.clone(),
            email: email.as_str().to_string(),
            role,
            invited_by: access.actor.clone(),
            created_at: now,
            expires_at: now.saturating_add(ms(ttl)),
            accepted_at: None,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&invitation.id)
        .bind(&invitation.org_id)
        .bind(&invitation.email)
        .bind(role.as_str())
        .bind(&token.hash)
        .bind(&invitation.invited_by)
        .bind(now)
        .bind(invitation.expires_at)
        .execute(self.db.pool())
        .await?;
        self.audit(
            &access.org.id,
            Some(&access.actor),
            action::INVITATION_CREATED,
            Some(&invitation.email),
            Some(role.as_str()),
        )
        .await?;
        Ok((invitation, token.token))
    }

    /// One page of the organization's invitations (pending, accepted, revoked, expired).
    pub async fn invitations(&self, access: &Access, page: &PageRequest) -> Result<Page<Invitation>> {
        let position = |i: &Invitation| Cursor { at: i.created_at, id: i.id.clone() };
        crate::page::org_rows(
            &self.db,
            "invitations",
            Invitation::COLUMNS,
            &access.org.id,
            page,
            Invitation::from_row,
            position,
        )
        .await
    }

    /// Revokes a pending invitation of the organization.
    pub async fn revoke_invitation(&self, access: &Access, id: &str) -> Result<()> {
        let done = sqlx::query(
            "UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND id = $2
             AND revoked_at IS NULL AND accepted_at IS NULL",
        )
        .bind(&access.org.id)
        .bind(id)
        .bind(self.now_ms())
        .execute(self.db.pool())
        .await?;
        if done.rows_affected() != 1 {
            return Err(PlatformError::NotFound("invitation"));
        }
        self.audit(&access.org.id, Some(&access.actor), action::INVITATION_REVOKED, Some(id), None).await
    }

    /// `user` accepts an invitation by its token; the invitation must be addressed to the user's
    /// email (any other reads as not found), pending, and not expired.
    pub async fn accept_invitation(&self, user: &User, token: &str) -> Result<OrganizationWithRole> {
        let not_found = || PlatformError::NotFound("invitation");
        let parsed = OpaqueToken::parse(TokenKind::Invitation, token.trim())
            .map_err(|e| PlatformError::invalid("token", e.to_string()))?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {}, token_hash FROM invitations WHERE id = $1",
            Invitation::COLUMNS
        )))
        .bind(&parsed.id)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(not_found)?;
        let stored: String = row.try_get("token_hash")?;
        let invitation = Invitation::from_row(&row)?;
        if !parsed.matches(&stored) || invitation.email != user.email || invitation.revoked_at.is_some() {
            return Err(not_found());
        }
        let now = self.now_ms();
        if invitation.accepted_at.is_some() || now >= invitation.expires_at {
            return Err(PlatformError::Expired("invitation"));
        }
        let organization = self.organization(&invitation.org_id).await?.ok_or_else(not_found)?;
        let mut tx = self.db.pool().begin().await?;
        let claimed = sqlx::query(
            "UPDATE invitations SET accepted_at = $2 WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(&invitation.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() != 1 {
            return Err(PlatformError::Expired("invitation"));
        }
        let joined = sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id, user_id) DO NOTHING",
        )
        .bind(&invitation.org_id)
        .bind(&user.id)
        .bind(invitation.role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if joined.rows_affected() != 1 {
            return Err(PlatformError::Conflict { field: None, detail: "you are already a member".into() });
        }
        tx.commit().await?;
        self.cache.forget(Change::Organizations);
        self.audit(
            &invitation.org_id,
            Some(&user.id),
            action::MEMBER_JOINED,
            Some(&user.id),
            Some(invitation.role.as_str()),
        )
        .await?;
        Ok(OrganizationWithRole { organization, role: invitation.role, joined_at: now })
    }
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

async fn lock_organization(tx: &mut Tx<'_>, org_id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE organizations SET updated_at = $2 WHERE id = $1")
        .bind(org_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn member_role(tx: &mut Tx<'_>, org_id: &str, user_id: &str) -> Result<Role> {
    let row = sqlx::query("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
        .bind(org_id)
        .bind(user_id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(PlatformError::NotFound("member"))?;
    role_of(&row)
}

async fn owners(tx: &mut Tx<'_>, org_id: &str) -> Result<i64> {
    let row = sqlx::query("SELECT count(*) AS n FROM memberships WHERE org_id = $1 AND role = 'owner'")
        .bind(org_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get("n")?)
}
