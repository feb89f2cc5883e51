//! The OpenAPI document, generated from the handlers' annotations and served at
//! `/api/soundcheck/openapi.json`.

use utoipa::OpenApi;

use super::routes::{checks, collectors, exemptions, results, stream, subscribers, tracks};
use crate::service::views;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "soundcheck", version = "0.1.0", description = "Open-source Soundcheck: tech-health checks and certifications for Backstage catalogs"),
    paths(
        checks::list, checks::create, checks::get, checks::update, checks::delete, checks::execute,
        checks::status, checks::status_filtered, checks::history, checks::history_filtered, checks::entities,
        exemptions::list, exemptions::create, exemptions::revoke, exemptions::restore, exemptions::revoked,
        results::get, results::submit, results::delete, results::certifications, results::certify_world,
        results::submit_facts, collectors::collect, collectors::list, collectors::get,
        collectors::create, collectors::update, collectors::delete, stream::stream,
        subscribers::list, subscribers::dead, subscribers::replay, subscribers::reset,
        tracks::list, tracks::create, tracks::get, tracks::update, tracks::delete, tracks::status,
        tracks::status_filtered, tracks::history, tracks::history_filtered, tracks::entities,
        tracks::list_campaigns, tracks::create_campaigns, tracks::get_campaign, tracks::update_campaign,
        tracks::delete_campaign, tracks::campaign_entities,
    ),
    components(schemas(
        views::CheckResultView, views::CheckStateCounts, views::CheckStatus, views::CheckStatusHistory,
        views::CheckHistoryDay, views::LevelStatus, views::CertificationStatus, views::TrackStatusHistory,
        views::TrackHistoryDay, views::ExemptionView, views::Certification, views::CertificationLevel,
        views::CertificationCheck, views::TrackRef,
    )),
    servers((url = "/", description = "this server"))
)]
pub struct ApiDoc;
