//! Error resolution (CFPB Regulation E, § 1005.33, as the model): a sender reports a problem with a transfer within
//! [`REPORT_WINDOW_DAYS`] of it ("I have a problem with transfer e93a37ef" in the chat, or the operator on their
//! behalf); the case is open for the operator, who must answer within [`ANSWER_WINDOW_DAYS`]. Opening and resolving
//! are compliance events.

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::views::*;
use super::{Engine, EngineError, Result};
use crate::domain::RemittanceId;
use crate::store::cases::{self, CaseRow};
use crate::store::compliance::{self as events, NewComplianceEvent};
use crate::store::now_ms;

/// A sender may report an error this long after the transfer.
pub const REPORT_WINDOW_DAYS: i64 = 180;
/// The operator answers within this long of the report.
pub const ANSWER_WINDOW_DAYS: i64 = 90;
const DAY_MS: i64 = 24 * 3600 * 1000;
const TEXT_MAX: usize = 1_000;

/// An error-resolution case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorCase {
    pub id: String,
    pub remittance_id: String,
    pub user_id: String,
    /// What the sender wrote.
    pub description: String,
    /// `open` or `resolved`.
    pub status: String,
    pub opened_at_unix_ms: i64,
    /// The answer is due by then (90 days).
    pub answer_due_unix_ms: i64,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at_unix_ms: Option<i64>,
}

impl From<CaseRow> for ErrorCase {
    fn from(r: CaseRow) -> Self {
        Self {
            id: r.id,
            remittance_id: r.remittance_id,
            user_id: r.user_id,
            description: r.description,
            status: r.status,
            opened_at_unix_ms: r.opened_at_unix_ms,
            answer_due_unix_ms: r.answer_due_unix_ms,
            resolution: r.resolution,
            resolved_by: r.resolved_by,
            resolved_at_unix_ms: r.resolved_at_unix_ms,
        }
    }
}

/// The operator's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseResolution {
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reviewer: String,
    /// What was found and done (told to the sender).
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    pub resolution: String,
}

fn case_text(what: &str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > TEXT_MAX || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(EngineError::Invalid(format!(
            "{what} must be 1 to {TEXT_MAX} characters"
        )));
    }
    Ok(v.to_owned())
}

impl Engine {
    /// Opens a case on a sender's transfer (one open case per transfer: reporting again returns it). Refused after
    /// [`REPORT_WINDOW_DAYS`].
    pub async fn open_case(
        &self,
        user_id: &str,
        id: &RemittanceId,
        description: &str,
    ) -> Result<(ErrorCase, bool)> {
        let description = case_text("description", description)?;
        let id = id.to_string();
        let mut tx = self.write_tx().await?;
        let r = load(&mut tx, &id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if r.sender_user_id.as_deref() != Some(user_id) {
            return Err(EngineError::NotFound("remittance"));
        }
        if let Some(open) = cases::open_of(&mut *tx, &id).await? {
            drop(tx);
            return Ok((open.into(), false));
        }
        let now = now_ms();
        if now > r.created_at_unix_ms.saturating_add(REPORT_WINDOW_DAYS * DAY_MS) {
            return Err(EngineError::Conflict(format!(
                "errors are reported within {REPORT_WINDOW_DAYS} days of the transfer"
            )));
        }
        let row = CaseRow {
            id: uuid::Uuid::now_v7().to_string(),
            remittance_id: id.clone(),
            user_id: user_id.to_owned(),
            description,
            status: "open".into(),
            opened_at_unix_ms: now,
            answer_due_unix_ms: now.saturating_add(ANSWER_WINDOW_DAYS * DAY_MS),
            resolution: None,
            resolved_by: None,
            resolved_at_unix_ms: None,
        };
        cases::insert(&mut *tx, &row).await?;
        events::insert(
            &mut *tx,
            &NewComplianceEvent {
                kind: "error_case_opened",
                subject: &id,
                actor: user_id,
                reason: &row.description,
                detail: &json!({"case": row.id, "answer_due_unix_ms": row.answer_due_unix_ms}).to_string(),
                at_unix_ms: now,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(target: "compliance", case = %row.id, remittance = %id, "error-resolution case opened");
        Ok((row.into(), true))
    }

    /// Open cases, oldest first (the operator's queue; `answer_due_unix_ms` says by when).
    pub async fn open_cases(&self, limit: u32) -> Result<Vec<ErrorCase>> {
        let limit = limit.clamp(1, self.config().page_limit_max);
        Ok(cases::in_status(&self.db().pool, "open", i64::from(limit))
            .await?
            .into_iter()
            .map(ErrorCase::from)
            .collect())
    }

    /// The operator's answer closes a case.
    pub async fn resolve_case(&self, case_id: &str, r: &CaseResolution) -> Result<ErrorCase> {
        let reviewer = case_text("reviewer", &r.reviewer)?;
        let resolution = case_text("resolution", &r.resolution)?;
        let mut tx = self.write_tx().await?;
        let case = cases::get(&mut *tx, case_id.trim())
            .await?
            .ok_or(EngineError::NotFound("case"))?;
        let now = now_ms();
        if !cases::resolve(&mut *tx, &case.id, &resolution, &reviewer, now).await? {
            return Err(EngineError::Conflict(format!(
                "case {} is {}",
                case.id, case.status
            )));
        }
        events::insert(
            &mut *tx,
            &NewComplianceEvent {
                kind: "error_case_resolved",
                subject: &case.remittance_id,
                actor: &reviewer,
                reason: &resolution,
                detail: &json!({"case": case.id, "on_time": now <= case.answer_due_unix_ms}).to_string(),
                at_unix_ms: now,
            },
        )
        .await?;
        let row = cases::get(&mut *tx, &case.id)
            .await?
            .ok_or(EngineError::NotFound("case"))?;
        tx.commit().await?;
        tracing::info!(target: "audit", case = %row.id, reviewer = %reviewer, "error-resolution case resolved");
        Ok(row.into())
    }
}
