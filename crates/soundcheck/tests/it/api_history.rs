//! A check's status history through the API when the check is deleted, with and without
//! `deleteHistory`, and created again with the same id.

use axum::http::{Method, StatusCode};
use soundcheck::store::QueryStore;

use crate::api::create_new_check;
use crate::api_harness::{Api, WRITE};
use crate::backends;

const CHECK: &str = "api-has-description";

async fn delete_check(api: &Api, query: &str) {
    let r = api
        .raw(
            Method::DELETE,
            &format!("/api/soundcheck/checks/{CHECK}{query}"),
            Some(WRITE),
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

/// The transitions the status history of the check reads.
async fn history_len(api: &Api) -> usize {
    api.app
        .store()
        .check_transitions(CHECK, "default")
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn delete_history_empties_the_status_history_of_a_check_created_again() {
    for b in backends::all().await {
        let name = b.name;
        let api = Api::example(b).await;
        create_new_check(&api).await;
        let first = history_len(&api).await;
        assert!(first > 0, "{name}: the new check's results were recorded");
        let first_history = api
            .get(&format!("/api/soundcheck/checks/{CHECK}/status-history"))
            .await;
        assert_eq!(first_history.status, StatusCode::OK, "{name}");

        // Without deleteHistory the history is kept, and a check with the same id adds to it.
        delete_check(&api, "").await;
        assert_eq!(history_len(&api).await, first, "{name}");
        create_new_check(&api).await;
        assert_eq!(history_len(&api).await, 2 * first, "{name}");

        // With it, the history so far is gone; the check created again starts afresh.
        delete_check(&api, "?deleteHistory=true").await;
        assert_eq!(history_len(&api).await, 0, "{name}");
        create_new_check(&api).await;
        assert_eq!(history_len(&api).await, first, "{name}");
        let again = api
            .get(&format!("/api/soundcheck/checks/{CHECK}/status-history"))
            .await;
        assert_eq!(again.body, first_history.body, "{name}");
    }
}
