//! Scheduled job state: when each job runs next and who holds its lease. Claiming is one
//! conditional `UPDATE` (due, and not leased by someone else), so among replicas sharing a
//! database exactly one runs a due job.

use std::future::Future;

use sqlx::Row;

use super::StoreResult;
use super::sql::SqlStore;

/// A job's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobState {
    /// The job.
    pub job_id: String,
    /// When it is next due (ms).
    pub next_run_at: i64,
    /// Last completed run (ms).
    pub last_run_at: Option<i64>,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// Completed runs.
    pub runs: i64,
}

/// Job scheduling state.
pub trait JobStore: Send + Sync {
    /// Creates the job's row if missing, first due at `first_run_at`.
    fn ensure_job(
        &self,
        job_id: &str,
        first_run_at: i64,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Claims a due job for `owner` until `lease_until`; false when not due or leased.
    fn claim_job(
        &self,
        job_id: &str,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Records a finished run and when the job is next due; releases the lease.
    fn finish_job(
        &self,
        job_id: &str,
        owner: &str,
        now_ms: i64,
        next_run_at: i64,
        error: Option<&str>,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// Every job's state.
    fn jobs(&self) -> impl Future<Output = StoreResult<Vec<JobState>>> + Send;
}

impl JobStore for SqlStore {
    async fn ensure_job(&self, job_id: &str, first_run_at: i64) -> StoreResult<()> {
        const SQL: &str = "INSERT INTO scheduled_jobs (job_id, next_run_at) VALUES ($1, $2) ON CONFLICT (job_id) DO NOTHING";
        on_pool!(self.write_pool(), p => { sqlx::query(SQL).bind(job_id).bind(first_run_at).execute(p).await?; });
        Ok(())
    }

    async fn claim_job(
        &self,
        job_id: &str,
        owner: &str,
        now_ms: i64,
        lease_until: i64,
    ) -> StoreResult<bool> {
        const SQL: &str = "UPDATE scheduled_jobs SET lease_owner = $2, lease_until = $4 \
            WHERE job_id = $1 AND next_run_at <= $3 AND (lease_until IS NULL OR lease_until < $3)";
        on_pool!(self.write_pool(), p => Ok(sqlx::query(SQL).bind(job_id).bind(owner).bind(now_ms).bind(lease_until).execute(p).await?.rows_affected() == 1))
    }

    async fn finish_job(
        &self,
        job_id: &str,
        owner: &str,
        now_ms: i64,
        next_run_at: i64,
        error: Option<&str>,
    ) -> StoreResult<()> {
        const SQL: &str = "UPDATE scheduled_jobs SET next_run_at = $4, lease_owner = NULL, lease_until = NULL, last_run_at = $3, \
            last_error = $5, runs = runs + 1 WHERE job_id = $1 AND lease_owner = $2";
        on_pool!(self.write_pool(), p => { sqlx::query(SQL).bind(job_id).bind(owner).bind(now_ms).bind(next_run_at).bind(error).execute(p).await?; });
        Ok(())
    }

    async fn jobs(&self) -> StoreResult<Vec<JobState>> {
        const SQL: &str = "SELECT job_id, next_run_at, last_run_at, last_error, runs FROM scheduled_jobs ORDER BY job_id";
        on_pool!(&self.pool, p => {
            sqlx::query(SQL).fetch_all(p).await?.into_iter().map(|r| Ok(JobState {
                job_id: r.try_get(0)?,
                next_run_at: r.try_get(1)?,
                last_run_at: r.try_get(2)?,
                last_error: r.try_get(3)?,
                runs: r.try_get(4)?,
            })).collect()
        })
    }
}
