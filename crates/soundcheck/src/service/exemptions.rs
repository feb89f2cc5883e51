//! Exemptions: listing (by check, by track, or all with paging), creating, revoking and
//! restoring. Each change re-certifies the entity, since an exempt check counts as passing.

use super::views::ExemptionView;
use super::{App, ServiceError, ServiceResult, now_ms};
use crate::store::{CatalogStore, ExemptionQuery, ExemptionRecord, QueryStore};

/// Which exemptions to list.
#[derive(Debug, Clone, Default)]
pub struct ExemptionFilter {
    /// One check.
    pub check_id: Option<String>,
    /// Every check of one track.
    pub track_id: Option<String>,
    /// One entity.
    pub entity_ref: Option<String>,
    /// Revoked ones.
    pub revoked: bool,
    /// Page size (1..=100).
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

impl App {
    /// Lists exemptions and how many match.
    pub async fn exemptions(&self, f: ExemptionFilter) -> ServiceResult<(Vec<ExemptionView>, i64)> {
        if f.check_id.is_some() && f.track_id.is_some() {
            return Err(ServiceError::Invalid(
                "checkId and trackId cannot be given together".to_string(),
            ));
        }
        let defs = self.definitions();
        let check_ids = match (&f.check_id, &f.track_id) {
            (Some(c), _) => vec![c.clone()],
            (None, Some(t)) => {
                let track = defs
                    .config
                    .track(t)
                    .ok_or_else(|| ServiceError::NotFound(format!("track `{t}` not found")))?;
                let mut ids: Vec<String> = track
                    .levels
                    .iter()
                    .flat_map(|l| l.checks.iter().map(|c| c.id.clone()))
                    .collect();
                ids.sort();
                ids.dedup();
                if ids.is_empty() {
                    return Ok((Vec::new(), 0));
                }
                ids
            }
            (None, None) => Vec::new(),
        };
        let entity_ref = f
            .entity_ref
            .as_deref()
            .map(|e| super::results::entity_ref(e, "entityRef"))
            .transpose()?;
        let query = ExemptionQuery {
            check_ids,
            entity_ref,
            revoked: f.revoked,
            limit: f.limit,
            offset: f.offset,
        };
        let (rows, total) = self.store.exemptions(&query, now_ms()).await?;
        Ok((rows.iter().map(ExemptionView::from).collect(), total))
    }

    /// Creates an exemption for a known check and entity.
    pub async fn create_exemption(
        &self,
        check_id: &str,
        entity: &str,
        justification: &str,
        expires_at: Option<i64>,
        by: &str,
    ) -> ServiceResult<ExemptionView> {
        let entity = self.known_pair(check_id, entity)?;
        if expires_at.is_some_and(|e| e <= now_ms()) {
            return Err(ServiceError::Invalid(
                "/expiresAt: the expiry is in the past".to_string(),
            ));
        }
        if justification.trim().is_empty() {
            return Err(ServiceError::Invalid(
                "/justification: must not be empty".to_string(),
            ));
        }
        let (active, _) = self
            .store
            .exemptions(&pair_query(check_id, &entity, false), now_ms())
            .await?;
        if !active.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "`{entity}` already has an active exemption from `{check_id}`"
            )));
        }
        let record = ExemptionRecord {
            check_id: check_id.to_string(),
            entity_ref: entity.clone(),
            justification: justification.to_string(),
            created_by: by.to_string(),
            created_at: now_ms(),
            expires_at,
            revoked: false,
        };
        self.store.create_exemption(&record).await?;
        self.live().recertify(&entity, "default").await?;
        self.one_exemption(check_id, &entity, false).await
    }

    /// Revokes the active exemption of a pair.
    pub async fn revoke_exemption(
        &self,
        check_id: &str,
        entity: &str,
        reason: Option<&str>,
        by: &str,
    ) -> ServiceResult<ExemptionView> {
        let entity = self.known_pair(check_id, entity)?;
        let n = self
            .store
            .revoke_exemption(check_id, &entity, by, reason, now_ms())
            .await?;
        if n == 0 {
            return Err(ServiceError::NotFound(format!(
                "`{entity}` has no active exemption from `{check_id}`"
            )));
        }
        self.live().recertify(&entity, "default").await?;
        self.one_exemption(check_id, &entity, true).await
    }

    /// Restores the most recently revoked exemption of a pair.
    pub async fn restore_exemption(
        &self,
        check_id: &str,
        entity: &str,
    ) -> ServiceResult<ExemptionView> {
        let entity = self.known_pair(check_id, entity)?;
        if self.store.restore_exemption(check_id, &entity).await? == 0 {
            return Err(ServiceError::NotFound(format!(
                "`{entity}` has no revoked exemption from `{check_id}` to restore (or already has an active one)"
            )));
        }
        self.live().recertify(&entity, "default").await?;
        self.one_exemption(check_id, &entity, false).await
    }

    fn known_pair(&self, check_id: &str, entity: &str) -> ServiceResult<String> {
        if self.definitions().config.check(check_id).is_none() {
            return Err(ServiceError::NotFound(format!(
                "check `{check_id}` not found"
            )));
        }
        let entity = super::results::entity_ref(entity, "/entityRef")?;
        if self.entity_body(&entity).is_none() {
            return Err(ServiceError::NotFound(format!(
                "entity `{entity}` is not in the catalog"
            )));
        }
        Ok(entity)
    }

    async fn one_exemption(
        &self,
        check_id: &str,
        entity: &str,
        revoked: bool,
    ) -> ServiceResult<ExemptionView> {
        let (rows, _) = self
            .store
            .exemptions(&pair_query(check_id, entity, revoked), now_ms())
            .await?;
        rows.last().map(ExemptionView::from).ok_or_else(|| {
            ServiceError::NotFound(format!("no exemption of `{entity}` from `{check_id}`"))
        })
    }
}

fn pair_query(check_id: &str, entity: &str, revoked: bool) -> ExemptionQuery {
    ExemptionQuery {
        check_ids: vec![check_id.to_string()],
        entity_ref: Some(entity.to_string()),
        revoked,
        limit: 1000,
        offset: 0,
    }
}
