//! Every access to a patient record, checked against the [`policy`](crate::policy) and
//! audited: the layer between the HTTP handlers and the SQL of [`PatientRepository`].
//!
//! Each handler first calls [`PatientAccess::authorize`] for its action, before it reads any
//! parameter or body (a refusal is audited as `denied`, and input the caller may not send is
//! never parsed); then the method for the action, which audits the access.

use kit::{RequestContext, auth::Action as _};
use serde_json::json;

use crate::{
    audit::{self, AuditEvent, AuditLog, AuditQuery, AuditRecord, AuditedReads},
    domain::{Patient, PatientDraft, PatientId},
    error::{Error, Result},
    policy::Action,
    records::{Change, PatientRepository, PatientVersion},
    registration::{Registrar, Registration},
    search::{Position, SearchFilter, SearchPage},
};

#[derive(Clone)]
pub struct PatientAccess {
    records: PatientRepository,
    registrar: Registrar,
    audit: AuditLog,
    reads: AuditedReads,
}

impl PatientAccess {
    pub fn new(
        records: PatientRepository,
        registrar: Registrar,
        audit: AuditLog,
        reads: AuditedReads,
    ) -> Self {
        Self { records, registrar, audit, reads }
    }

    /// 403 unless the caller may do `action`; the refusal is audited first.
    pub async fn authorize(
        &self,
        ctx: &RequestContext,
        action: Action,
        patient_id: Option<PatientId>,
    ) -> Result<()> {
        if ctx.may(action) {
            return Ok(());
        }
        tracing::warn!(action = action.as_str(), actor = %ctx.user_id, "access denied");
        self.audit.record(AuditEvent::new(ctx, action, patient_id, "denied")).await?;
        Err(Error::Forbidden)
    }

    /// Registers a patient.
    pub async fn register(&self, ctx: &RequestContext, draft: PatientDraft) -> Result<Patient> {
        let id = PatientId::new();
        let Change { audit, trace_id, .. } = Change::new(ctx, Action::Create, id);
        self.registrar.register(Registration { id, draft, audit, trace_id }).await
    }

    /// Replaces a patient's data if it is still at `expected_version`.
    pub async fn update(
        &self,
        ctx: &RequestContext,
        id: PatientId,
        expected_version: i32,
        draft: PatientDraft,
    ) -> Result<Patient> {
        self.records.update(id, expected_version, draft, Change::new(ctx, Action::Update, id)).await
    }

    /// Deactivates patient `id` at `expected_version`, for `reason` if given (kept with the
    /// new version, never in the audit row).
    pub async fn deactivate(
        &self,
        ctx: &RequestContext,
        id: PatientId,
        expected_version: i32,
        reason: Option<String>,
    ) -> Result<Patient> {
        let change = Change::new(ctx, Action::Deactivate, id).because(reason);
        self.records.deactivate(id, expected_version, change).await
    }

    /// Reads a patient; the read is audited whatever the outcome, before anything is answered.
    pub async fn read(&self, ctx: &RequestContext, id: PatientId) -> Result<Patient> {
        match self.reads.read(id, AuditEvent::new(ctx, Action::Read, Some(id), "ok")).await? {
            None => Err(Error::NotFound),
            Some(patient) if !patient.active => Err(Error::Gone),
            Some(patient) => Ok(patient),
        }
    }

    /// Every version of a patient record, newest first; audited whatever the outcome.
    pub async fn history(&self, ctx: &RequestContext, id: PatientId) -> Result<Vec<PatientVersion>> {
        let versions = self.records.history(id).await?;
        let outcome = if versions.is_empty() { "not_found" } else { "ok" };
        self.audit.record(AuditEvent::new(ctx, Action::History, Some(id), outcome)).await?;
        if versions.is_empty() { Err(Error::NotFound) } else { Ok(versions) }
    }

    /// One page of matches; the audit row keeps which filters were used and how many
    /// patients were shown, never the search terms.
    pub async fn search(
        &self,
        ctx: &RequestContext,
        filter: &SearchFilter,
        limit: u32,
        after: Option<&Position>,
    ) -> Result<SearchPage> {
        let page = self.records.search(filter, limit, after).await?;
        // Which patients were shown (their ids), not only how many; never the search terms.
        let shown: Vec<_> = page.items.iter().map(|p| p.id).collect();
        let event = AuditEvent::new(ctx, Action::Search, None, "ok")
            .with_details(json!({ "filters": filter.used(), "results": shown.len(), "patientIds": shown }));
        self.audit.record(event).await?;
        Ok(page)
    }

    /// The audit trail, newest first (the handler checked [`Action::ReadAudit`] first, as every
    /// handler checks its action).
    pub async fn audit_trail(&self, query: &AuditQuery, limit: u32) -> Result<Vec<AuditRecord>> {
        Ok(audit::list(self.records.pool(), query, limit).await?)
    }
}
