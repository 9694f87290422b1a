//! The audit log: security-relevant actions per organization (logins, keys created and revoked,
//! member roles changed, members removed, invitations, organization deletion, repositories
//! connected, changed and removed), readable by admins.

use crate::error::Result;
use crate::page::{Cursor, Page, PageRequest};
use crate::records::AuditEntry;
use crate::{Access, Platform, new_id};
use ledge_db::sqlx;

/// The actions the log records.
pub mod action {
    pub const LOGIN: &str = "login";
    pub const ORGANIZATION_CREATED: &str = "organization.created";
    pub const ORGANIZATION_UPDATED: &str = "organization.updated";
    pub const ORGANIZATION_DELETED: &str = "organization.deleted";
    pub const ORGANIZATION_RESTORED: &str = "organization.restored";
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const MEMBER_JOINED: &str = "member.joined";
    pub const INVITATION_CREATED: &str = "invitation.created";
    pub const INVITATION_REVOKED: &str = "invitation.revoked";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const REPOSITORY_CONNECTED: &str = "repository.connected";
    pub const REPOSITORY_UPDATED: &str = "repository.updated";
    pub const REPOSITORY_REMOVED: &str = "repository.removed";
}

impl Platform {
    /// Appends one entry to `org_id`'s log.
    pub(crate) async fn audit(
        &self,
        org_id: &str,
        actor: Option<&str>,
        action: &str,
        target: Option<&str>,
        detail: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, org_id, actor, action, target, detail, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(new_id())
        .bind(org_id)
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .bind(self.now_ms())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// A login, in the log of every organization the user belongs to (one statement).
    pub(crate) async fn audit_login(&self, user_id: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, org_id, actor, action, target, detail, at)
             SELECT $1 || '-' || org_id, org_id, $2, $3, $2, NULL, $4 FROM memberships WHERE user_id = $2",
        )
        .bind(new_id())
        .bind(user_id)
        .bind(action::LOGIN)
        .bind(self.now_ms())
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// One page of the organization's log, oldest first.
    pub async fn audit_log(&self, access: &Access, page: &PageRequest) -> Result<Page<AuditEntry>> {
        let (at, id) = page.bounds();
        let rows = sqlx::query(
            "SELECT id, org_id, actor, action, target, detail, at FROM audit_log
             WHERE org_id = $1 AND (at > $2 OR (at = $2 AND id > $3))
             ORDER BY at, id LIMIT $4",
        )
        .bind(&access.org.id)
        .bind(at)
        .bind(id)
        .bind(page.fetch())
        .fetch_all(self.db.pool())
        .await?;
        let entries = rows.iter().map(AuditEntry::from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::cut(entries, page, |e| Cursor { at: e.at, id: e.id.clone() }))
    }
}
