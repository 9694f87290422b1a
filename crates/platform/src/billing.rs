//! Billing: plans with limits, usage metered per organization, and subscriptions kept up to date
//! by Stripe events.
//!
//! * A [`Plan`] has **limits** on what an organization holds (repositories, indexed files; over
//!   one: [`PlatformError::PlanLimit`], HTTP 402) and **daily quotas** on what it does (searches,
//!   chat messages per UTC day; used up: [`PlatformError::QuotaExceeded`], HTTP 429 until the next
//!   UTC midnight). `None` is no limit.
//! * An organization without a subscription record is on the `free` plan. Its subscription's plan
//!   applies while the status is `active`, `trialing` or `past_due` (Stripe is still retrying the
//!   payment); any other status (`canceled`, `unpaid`, …) falls back to `free`.
//! * [`Platform::meter`] counts one unit of a quota with a single conditional upsert, so concurrent
//!   requests — on any number of nodes sharing the store — never pass the quota together.
//! * [`Platform::apply_stripe_event`] takes a payload whose signature the caller has verified
//!   (`ledge_auth::stripe`) and applies `checkout.session.completed`,
//!   `customer.subscription.updated`/`deleted` and `invoice.payment_failed` in one transaction
//!   with the event's id, so a replayed event changes nothing; an event older than the last one
//!   applied to the subscription is recorded but does not roll it back.

use ledge_db::Record as _;
use ledge_db::{Database, sqlx};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

use crate::error::{PlatformError, Result};
use crate::{Access, Platform};

const DAY_MS: i64 = 86_400_000;

/// The audit log's action for a subscription changed by a Stripe event.
pub const SUBSCRIPTION_CHANGED: &str = "billing.subscription_changed";

/// What an organization on a plan may hold and do; `None`: no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanLimits {
    pub repositories: Option<u64>,
    pub indexed_files: Option<u64>,
    pub searches_per_day: Option<u64>,
    pub chat_messages_per_day: Option<u64>,
}

/// A plan, as configured (`[plans.<name>]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    pub name: String,
    pub limits: PlanLimits,
    /// The Stripe price id a subscription to this plan carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_price: Option<String>,
}

/// The configured plans; always holds [`Plans::FREE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plans(Vec<Plan>);

impl Plans {
    /// The plans of the configuration (`[plans.*]`).
    pub fn configured(plans: &std::collections::BTreeMap<String, ledge_config::PlanConfig>) -> Plans {
        Plans::new(
            plans
                .iter()
                .map(|(name, plan)| Plan {
                    name: name.clone(),
                    limits: PlanLimits {
                        repositories: plan.repositories,
                        indexed_files: plan.indexed_files,
                        searches_per_day: plan.searches_per_day,
                        chat_messages_per_day: plan.chat_messages_per_day,
                    },
                    stripe_price: plan.stripe_price.clone(),
                })
                .collect(),
        )
    }

    /// The plan of an organization without a (live) subscription.
    pub const FREE: &'static str = "free";

    /// The plans; a missing `free` plan is added with nothing allowed.
    pub fn new(mut plans: Vec<Plan>) -> Plans {
        if !plans.iter().any(|p| p.name == Plans::FREE) {
            let nothing = Some(0);
            let limits = PlanLimits {
                repositories: nothing,
                indexed_files: nothing,
                searches_per_day: nothing,
                chat_messages_per_day: nothing,
            };
            plans.push(Plan { name: Plans::FREE.into(), limits, stripe_price: None });
        }
        Plans(plans)
    }

    pub fn get(&self, name: &str) -> Option<&Plan> {
        self.0.iter().find(|p| p.name == name)
    }

    pub fn free(&self) -> &Plan {
        self.get(Plans::FREE).unwrap_or(&self.0[0])
    }

    /// The plan a Stripe price id stands for.
    pub fn by_price(&self, price: &str) -> Option<&Plan> {
        self.0.iter().find(|p| p.stripe_price.as_deref() == Some(price))
    }

    pub fn all(&self) -> &[Plan] {
        &self.0
    }
}

/// The built-in plans of `ledge-config` (`[plans.free|pro|team]`), for callers without a
/// configuration (tests, tools).
impl Default for Plans {
    fn default() -> Plans {
        let plan = |name: &str, limits: [u64; 4]| Plan {
            name: name.into(),
            limits: PlanLimits {
                repositories: Some(limits[0]),
                indexed_files: Some(limits[1]),
                searches_per_day: Some(limits[2]),
                chat_messages_per_day: Some(limits[3]),
            },
            stripe_price: None,
        };
        Plans(vec![
            plan("free", [3, 10_000, 200, 50]),
            plan("pro", [25, 250_000, 5_000, 1_000]),
            plan("team", [200, 2_000_000, 50_000, 10_000]),
        ])
    }
}

/// A limit on what an organization holds (answered 402 when reached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Repositories,
    IndexedFiles,
}

impl Limit {
    /// The limit's name, as in the configuration and in error answers.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Repositories => "repositories",
            Limit::IndexedFiles => "indexed_files",
        }
    }

    pub(crate) fn of(self, limits: &PlanLimits) -> Option<u64> {
        match self {
            Limit::Repositories => limits.repositories,
            Limit::IndexedFiles => limits.indexed_files,
        }
    }
}

/// A daily quota on what an organization does (answered 429 when used up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Searches,
    ChatMessages,
}

impl Quota {
    /// The quota's name, as in the configuration and in error answers.
    pub fn name(self) -> &'static str {
        match self {
            Quota::Searches => "searches_per_day",
            Quota::ChatMessages => "chat_messages_per_day",
        }
    }

    /// The metric its usage is counted under.
    fn metric(self) -> &'static str {
        match self {
            Quota::Searches => "searches",
            Quota::ChatMessages => "chat_messages",
        }
    }

    fn of(self, limits: &PlanLimits) -> Option<u64> {
        match self {
            Quota::Searches => limits.searches_per_day,
            Quota::ChatMessages => limits.chat_messages_per_day,
        }
    }
}

/// An organization's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subscription {
    /// The plan subscribed to (what applies depends on `status`, see [`Subscription::effective_plan`]).
    pub plan: String,
    /// Stripe's subscription status (`active`, `trialing`, `past_due`, `canceled`, `unpaid`, …);
    /// `active` for an organization on the free plan without a subscription.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_customer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_subscription: Option<String>,
    /// End of the period paid for, epoch ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<i64>,
    /// Creation time of the last Stripe event applied, epoch ms (0: none yet).
    #[serde(skip)]
    pub event_at: i64,
}

impl Subscription {
    fn free() -> Subscription {
        Subscription {
            plan: Plans::FREE.into(),
            status: "active".into(),
            stripe_customer: None,
            stripe_subscription: None,
            current_period_end: None,
            event_at: 0,
        }
    }

    /// The plan whose limits apply: the subscribed one while it is live, else `free`.
    pub fn effective_plan(&self) -> &str {
        match self.status.as_str() {
            "active" | "trialing" | "past_due" => &self.plan,
            _ => Plans::FREE,
        }
    }
}

/// What an organization is billed for and has used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillingOverview {
    pub subscription: Subscription,
    /// The plan whose limits apply now.
    pub plan: Plan,
    pub usage: Usage,
}

/// An organization's usage: what it holds, and what it did today (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    pub repositories: u64,
    /// The files its repositories' last admitted indexing jobs leave indexed.
    pub indexed_files: u64,
    pub searches_today: u64,
    pub chat_messages_today: u64,
}

/// What became of a Stripe event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StripeOutcome {
    /// The organization's subscription is now this.
    Applied { org_id: String, subscription: Subscription },
    /// The event id was applied before: nothing changed.
    Duplicate,
    /// Older than the last event applied to the subscription: recorded, nothing changed.
    Stale { org_id: String },
    /// A type ledge does not act on.
    Ignored,
}

/// What an event changes in a subscription; `None` keeps the current value.
#[derive(Debug, Default)]
struct Change {
    plan: Option<String>,
    status: String,
    customer: Option<String>,
    subscription: Option<String>,
    period_end: Option<i64>,
}

/// The statuses a Stripe subscription can have.
const STRIPE_STATUSES: &[&str] =
    &["active", "trialing", "past_due", "canceled", "unpaid", "incomplete", "incomplete_expired", "paused"];

fn invalid(field: &'static str, reason: &str) -> PlatformError {
    PlatformError::invalid(field, reason.to_string())
}

/// A string at `path` under `object`, if it is one (an expanded object's `id` counts).
fn text<'a>(object: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut value = object;
    for key in path {
        value = value.get(key)?;
    }
    value.as_str().or_else(|| value.get("id").and_then(Value::as_str)).filter(|s| !s.is_empty())
}

fn seconds_ms(value: Option<&Value>) -> Option<i64> {
    value.and_then(Value::as_i64).map(|s| s.saturating_mul(1000))
}

/// The organization's subscription (the free plan if it has none).
pub(crate) async fn subscription_of(db: &Database, org_id: &str) -> Result<Subscription> {
    let row = db
        .row(
            "SELECT plan, status, stripe_customer, stripe_subscription, current_period_end, event_at
             FROM subscriptions WHERE org_id = $1",
            &[org_id.into()],
        )
        .await?;
    let Some(row) = row else { return Ok(Subscription::free()) };
    Ok(Subscription {
        plan: row.field("plan")?,
        status: row.field("status")?,
        stripe_customer: row.field("stripe_customer")?,
        stripe_subscription: row.field("stripe_subscription")?,
        current_period_end: row.field("current_period_end")?,
        event_at: row.field("event_at")?,
    })
}

/// The plan of `plans` whose limits apply to the organization now; a plan no longer configured
/// falls back to `free`.
pub(crate) async fn plan_of(db: &Database, plans: &Plans, org_id: &str) -> Result<Plan> {
    let subscription = subscription_of(db, org_id).await?;
    let name = subscription.effective_plan();
    Ok(match plans.get(name) {
        Some(plan) => plan.clone(),
        None => {
            tracing::warn!(org_id, plan = name, "the subscription's plan is not configured; using free");
            plans.free().clone()
        }
    })
}

/// The indexed files metered for the organization: the sum over its repositories.
pub(crate) async fn indexed_files_held(db: &Database, org_id: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(files), 0) AS BIGINT) FROM indexed_files WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_one(db.pool())
    .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

impl Platform {
    /// The configured plans.
    pub fn plans(&self) -> &Plans {
        &self.options.plans
    }

    /// The organization's subscription (the free plan if it has none).
    pub async fn subscription(&self, org_id: &str) -> Result<Subscription> {
        subscription_of(&self.db, org_id).await
    }

    /// The plan whose limits apply to the organization now. A plan no longer configured falls
    /// back to `free`.
    pub async fn plan_of(&self, org_id: &str) -> Result<Plan> {
        plan_of(&self.db, self.plans(), org_id).await
    }

    /// `Ok` if the organization may add one more of what `limit` counts (`adding` of them, for
    /// indexed files), else [`PlatformError::PlanLimit`] naming the limit.
    pub async fn check_limit(&self, org_id: &str, limit: Limit, adding: u64) -> Result<()> {
        let plan = self.plan_of(org_id).await?;
        let Some(allowed) = limit.of(&plan.limits) else { return Ok(()) };
        let held = match limit {
            Limit::Repositories => self.repository_count(org_id).await?,
            // Metered by the indexing jobs (`RepositoryLedger::admit_indexed_files`).
            Limit::IndexedFiles => indexed_files_held(&self.db, org_id).await?,
        };
        if held.saturating_add(adding) > allowed {
            return Err(PlatformError::PlanLimit { limit: limit.name(), allowed, plan: plan.name });
        }
        Ok(())
    }

    async fn repository_count(&self, org_id: &str) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM repositories WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(self.db.pool())
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Counts one unit of `quota` for the organization today (UTC) and answers the count, or
    /// [`PlatformError::QuotaExceeded`] (counting nothing) when today's quota is used up.
    pub async fn meter(&self, org_id: &str, quota: Quota) -> Result<u64> {
        let plan = self.plan_of(org_id).await?;
        let allowed = quota.of(&plan.limits);
        let now = self.now_ms();
        let day = now.div_euclid(DAY_MS);
        let exceeded = |allowed: u64| {
            let retry_after = Duration::from_millis(u64::try_from((day + 1) * DAY_MS - now).unwrap_or(1));
            PlatformError::QuotaExceeded {
                quota: quota.name(),
                allowed,
                plan: plan.name.clone(),
                retry_after,
            }
        };
        if allowed == Some(0) {
            return Err(exceeded(0));
        }
        let cap = allowed.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        // One statement: the row is created at 1, or incremented only while under the quota.
        let count: Option<i64> = sqlx::query_scalar(
            "INSERT INTO usage_counters (org_id, metric, day, count) VALUES ($1, $2, $3, 1)
             ON CONFLICT (org_id, metric, day) DO UPDATE SET count = usage_counters.count + 1
             WHERE usage_counters.count < $4
             RETURNING count",
        )
        .bind(org_id)
        .bind(quota.metric())
        .bind(day)
        .bind(cap)
        .fetch_optional(self.db.pool())
        .await?;
        match count {
            Some(count) => Ok(u64::try_from(count).unwrap_or(0)),
            None => Err(exceeded(allowed.unwrap_or(0))),
        }
    }

    async fn used_today(&self, org_id: &str, quota: Quota) -> Result<u64> {
        let day = self.now_ms().div_euclid(DAY_MS);
        let count: Option<i64> = sqlx::query_scalar(
            "SELECT count FROM usage_counters WHERE org_id = $1 AND metric = $2 AND day = $3",
        )
        .bind(org_id)
        .bind(quota.metric())
        .bind(day)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(count.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// The organization's subscription, the plan that applies and its usage.
    pub async fn billing(&self, access: &Access) -> Result<BillingOverview> {
        let org_id = &access.org.id;
        let subscription = self.subscription(org_id).await?;
        let plan = self.plan_of(org_id).await?;
        let usage = Usage {
            repositories: self.repository_count(org_id).await?,
            indexed_files: indexed_files_held(&self.db, org_id).await?,
            searches_today: self.used_today(org_id, Quota::Searches).await?,
            chat_messages_today: self.used_today(org_id, Quota::ChatMessages).await?,
        };
        Ok(BillingOverview { subscription, plan, usage })
    }

    /// Applies a Stripe event whose signature has been verified. A malformed event, or one the
    /// organization of which cannot be found, is an error and records nothing (Stripe retries it).
    pub async fn apply_stripe_event(&self, payload: &[u8]) -> Result<StripeOutcome> {
        let event: Value =
            serde_json::from_slice(payload).map_err(|_| invalid("body", "is not a JSON Stripe event"))?;
        let id = text(&event, &["id"]).ok_or_else(|| invalid("id", "must be the event's id"))?;
        let kind = text(&event, &["type"]).ok_or_else(|| invalid("type", "must be the event's type"))?;
        let created = seconds_ms(event.get("created"))
            .ok_or_else(|| invalid("created", "must be the event's creation time in seconds"))?;
        let object = event
            .get("data")
            .and_then(|d| d.get("object"))
            .filter(|o| o.is_object())
            .ok_or_else(|| invalid("data.object", "must be an object"))?;
        let (org_hint, change) = match kind {
            "checkout.session.completed" => self.checkout_completed(object)?,
            "customer.subscription.updated" => self.subscription_updated(object)?,
            "customer.subscription.deleted" => (
                None,
                Change {
                    plan: Some(Plans::FREE.into()),
                    status: "canceled".into(),
                    subscription: text(object, &["id"]).map(str::to_string),
                    customer: text(object, &["customer"]).map(str::to_string),
                    period_end: None,
                },
            ),
            "invoice.payment_failed" => (
                None,
                Change {
                    status: "past_due".into(),
                    subscription: text(object, &["subscription"])
                        .or_else(|| text(object, &["parent", "subscription_details", "subscription"]))
                        .map(str::to_string),
                    customer: text(object, &["customer"]).map(str::to_string),
                    ..Change::default()
                },
            ),
            _ => return Ok(StripeOutcome::Ignored),
        };
        let metadata_org = text(object, &["metadata", "org_id"]);
        let org_id = match org_hint.or(metadata_org) {
            Some(org) => org.to_string(),
            None => self.org_of_stripe_ids(&change).await?,
        };
        if self.organization(&org_id).await?.is_none() {
            return Err(PlatformError::NotFound("organization"));
        }

        let now = self.now_ms();
        let mut tx = self.db.pool().begin().await?;
        let first = sqlx::query(
            "INSERT INTO billing_events (id, kind, org_id, received_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(&org_id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if first != 1 {
            return Ok(StripeOutcome::Duplicate);
        }
        let current = self.subscription(&org_id).await?;
        if created < current.event_at {
            tx.commit().await?;
            tracing::info!(
                event = id,
                kind,
                org_id,
                "an older Stripe event than the last applied; not applied"
            );
            return Ok(StripeOutcome::Stale { org_id });
        }
        let next = Subscription {
            plan: change.plan.unwrap_or(current.plan),
            status: change.status,
            stripe_customer: change.customer.or(current.stripe_customer),
            stripe_subscription: change.subscription.or(current.stripe_subscription),
            current_period_end: change.period_end.or(current.current_period_end),
            event_at: created,
        };
        sqlx::query(
            "INSERT INTO subscriptions (org_id, plan, status, stripe_customer, stripe_subscription,
               current_period_end, event_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (org_id) DO UPDATE SET plan = $2, status = $3, stripe_customer = $4,
               stripe_subscription = $5, current_period_end = $6, event_at = $7, updated_at = $8
             WHERE subscriptions.event_at <= $7",
        )
        .bind(&org_id)
        .bind(&next.plan)
        .bind(&next.status)
        .bind(&next.stripe_customer)
        .bind(&next.stripe_subscription)
        .bind(next.current_period_end)
        .bind(next.event_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let detail = format!("{kind}: {} {}", next.plan, next.status);
        self.audit(&org_id, None, SUBSCRIPTION_CHANGED, Some(id), Some(&detail)).await?;
        Ok(StripeOutcome::Applied { org_id, subscription: next })
    }

    /// `checkout.session.completed`: the organization is the session's `client_reference_id` (or
    /// `metadata.org_id`), the plan its `metadata.plan`.
    fn checkout_completed<'a>(&self, session: &'a Value) -> Result<(Option<&'a str>, Change)> {
        let org = text(session, &["client_reference_id"])
            .or_else(|| text(session, &["metadata", "org_id"]))
            .ok_or_else(|| {
                invalid("data.object.client_reference_id", "must name the organization (its id)")
            })?;
        let plan = text(session, &["metadata", "plan"])
            .ok_or_else(|| invalid("data.object.metadata.plan", "must name the plan bought"))?;
        if self.plans().get(plan).is_none() {
            return Err(invalid("data.object.metadata.plan", "is not a configured plan"));
        }
        let change = Change {
            plan: Some(plan.to_string()),
            status: "active".into(),
            customer: text(session, &["customer"]).map(str::to_string),
            subscription: text(session, &["subscription"]).map(str::to_string),
            period_end: None,
        };
        Ok((Some(org), change))
    }

    /// `customer.subscription.updated`: the plan of the first item's price (`stripe_price`), else
    /// `metadata.plan`, else unchanged; Stripe's status.
    fn subscription_updated<'a>(&self, subscription: &'a Value) -> Result<(Option<&'a str>, Change)> {
        let status = text(subscription, &["status"])
            .filter(|s| STRIPE_STATUSES.contains(s))
            .ok_or_else(|| invalid("data.object.status", "must be a Stripe subscription status"))?;
        let item = subscription.get("items").and_then(|i| i.get("data")).and_then(|d| d.get(0));
        let price = item.and_then(|item| text(item, &["price", "id"]).or_else(|| text(item, &["price"])));
        let plan =
            match (price.and_then(|p| self.plans().by_price(p)), text(subscription, &["metadata", "plan"])) {
                (Some(plan), _) => Some(plan.name.clone()),
                (None, Some(plan)) if self.plans().get(plan).is_some() => Some(plan.to_string()),
                (None, Some(_)) => {
                    return Err(invalid("data.object.metadata.plan", "is not a configured plan"));
                }
                (None, None) => None,
            };
        let period_end = seconds_ms(subscription.get("current_period_end"))
            .or_else(|| seconds_ms(item.and_then(|i| i.get("current_period_end"))));
        let change = Change {
            plan,
            status: status.to_string(),
            customer: text(subscription, &["customer"]).map(str::to_string),
            subscription: text(subscription, &["id"]).map(str::to_string),
            period_end,
        };
        Ok((None, change))
    }

    /// The organization whose subscription (or else customer) the change names.
    async fn org_of_stripe_ids(&self, change: &Change) -> Result<String> {
        for (column, value) in
            [("stripe_subscription", &change.subscription), ("stripe_customer", &change.customer)]
        {
            let Some(value) = value else { continue };
            let sql = format!("SELECT org_id FROM subscriptions WHERE {column} = $1");
            let org: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .bind(value)
                .fetch_optional(self.db.pool())
                .await?;
            if let Some(org) = org {
                return Ok(org);
            }
        }
        Err(PlatformError::NotFound("subscription"))
    }
}
