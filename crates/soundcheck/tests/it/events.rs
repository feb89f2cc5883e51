//! Subscriber semantics of the events service (decisions.md §6), on SQLite and (when
//! configured) PostgreSQL: shared ids split work, distinct ids each get everything, failing
//! handlers are retried then parked, parked events replay, one key's events keep their order,
//! late subscribers start at the newest event, and cursors survive a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use soundcheck::events::{
    DeliverySettings, EventsService, HandlerError, StartAt, SubscribeOptions, handler,
};
use soundcheck::store::SqlStore;
use soundcheck_core::events::{CHECK_STATUS_CHANGE_TOPIC, EventParams};

use crate::backends;

type Seen = Arc<Mutex<Vec<(String, i64)>>>;

fn settings() -> DeliverySettings {
    DeliverySettings {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        batch_size: 7,
        cursor_save_interval: Duration::from_millis(20),
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_millis(400),
    }
}

fn event(entity: &str, n: i64) -> EventParams {
    EventParams {
        topic: CHECK_STATUS_CHANGE_TOPIC.into(),
        event_payload: json!({"checkId": "c", "entityRef": entity, "state": "passed", "timestampMs": n, "scope": "default"}),
        metadata: None,
    }
}

/// A subscription recording (entityRef, timestampMs) of what it receives.
fn recorder(id: &str, seen: &Seen, start: StartAt) -> SubscribeOptions {
    let seen = seen.clone();
    SubscribeOptions {
        id: id.into(),
        topics: vec![CHECK_STATUS_CHANGE_TOPIC.into()],
        on_event: handler(move |p: EventParams| {
            let seen = seen.clone();
            async move {
                let entity = p.event_payload["entityRef"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                seen.lock().unwrap().push((
                    entity,
                    p.event_payload["timestampMs"].as_i64().unwrap_or(-1),
                ));
                Ok::<(), HandlerError>(())
            }
        }),
        start,
    }
}

async fn wait_for(seen: &Seen, count: usize) -> Vec<(String, i64)> {
    for _ in 0..500 {
        if seen.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    seen.lock().unwrap().clone()
}

async fn publish_many(service: &EventsService<SqlStore>, entities: usize, per_entity: i64) {
    for n in 0..per_entity {
        for e in 0..entities {
            service
                .publish(event(&format!("component:default/e{e}"), n))
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn distinct_ids_each_get_all_and_a_shared_id_splits_the_work() {
    for b in backends::all().await {
        let service = EventsService::new(b.store.clone(), settings());
        let (a, c, shared1, shared2): (Seen, Seen, Seen, Seen) = Default::default();
        service
            .subscribe(recorder("a", &a, StartAt::Latest))
            .await
            .unwrap();
        service
            .subscribe(recorder("c", &c, StartAt::Latest))
            .await
            .unwrap();
        service
            .subscribe(recorder("shared", &shared1, StartAt::Latest))
            .await
            .unwrap();
        service
            .subscribe(recorder("shared", &shared2, StartAt::Latest))
            .await
            .unwrap();
        publish_many(&service, 10, 4).await;
        assert_eq!(wait_for(&a, 40).await.len(), 40, "{}", b.name);
        assert_eq!(wait_for(&c, 40).await.len(), 40, "{}", b.name);
        for _ in 0..200 {
            if shared1.lock().unwrap().len() + shared2.lock().unwrap().len() >= 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (s1, s2) = (
            shared1.lock().unwrap().clone(),
            shared2.lock().unwrap().clone(),
        );
        assert_eq!(
            s1.len() + s2.len(),
            40,
            "{}: each event to exactly one of the shared handlers",
            b.name
        );
        assert!(
            !s1.is_empty() && !s2.is_empty(),
            "{}: both shared handlers got work ({} / {})",
            b.name,
            s1.len(),
            s2.len()
        );
        let mut all: Vec<_> = s1.iter().chain(&s2).cloned().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 40, "{}: no event twice", b.name);
        let infos = service.subscribers().await.unwrap();
        assert_eq!(
            infos.iter().find(|i| i.id == "shared").map(|i| i.handlers),
            Some(2)
        );
        assert!(infos.iter().all(|i| i.lag == 0), "{}: {infos:?}", b.name);
        service.shutdown().await;
    }
}

#[tokio::test]
async fn one_keys_events_arrive_in_order() {
    for b in backends::all().await {
        let service = EventsService::new(b.store.clone(), settings());
        let (h1, h2): (Seen, Seen) = Default::default();
        service
            .subscribe(recorder("ordered", &h1, StartAt::Latest))
            .await
            .unwrap();
        service
            .subscribe(recorder("ordered", &h2, StartAt::Latest))
            .await
            .unwrap();
        publish_many(&service, 5, 20).await;
        wait_for(&h1, 1).await;
        for _ in 0..300 {
            if h1.lock().unwrap().len() + h2.lock().unwrap().len() >= 100 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for seen in [&h1, &h2] {
            let seen = seen.lock().unwrap().clone();
            for e in 0..5 {
                let key = format!("component:default/e{e}");
                let order: Vec<i64> = seen
                    .iter()
                    .filter(|(k, _)| *k == key)
                    .map(|(_, n)| *n)
                    .collect();
                assert!(
                    order.windows(2).all(|w| w[0] < w[1]),
                    "{}: {key} out of order: {order:?}",
                    b.name
                );
            }
        }
        service.shutdown().await;
    }
}

#[tokio::test]
async fn failing_handlers_are_retried_then_parked_and_replayed_without_blocking_others() {
    for b in backends::all().await {
        let service = EventsService::new(b.store.clone(), settings());
        let attempts = Arc::new(Mutex::new(0u32));
        let healthy = Arc::new(Mutex::new(false));
        let (ok_seen, flaky_seen): (Seen, Seen) = Default::default();
        let (counter, up, seen) = (attempts.clone(), healthy.clone(), flaky_seen.clone());
        service
            .subscribe(SubscribeOptions {
                id: "flaky".into(),
                topics: vec![CHECK_STATUS_CHANGE_TOPIC.into()],
                on_event: handler(move |p: EventParams| {
                    let (counter, up, seen) = (counter.clone(), up.clone(), seen.clone());
                    async move {
                        let poison = p.event_payload["entityRef"] == "component:default/poison";
                        if poison && !*up.lock().unwrap() {
                            *counter.lock().unwrap() += 1;
                            return Err::<(), HandlerError>("downstream is down".into());
                        }
                        seen.lock()
                            .unwrap()
                            .push((p.event_payload["entityRef"].to_string(), 0));
                        Ok(())
                    }
                }),
                start: StartAt::Latest,
            })
            .await
            .unwrap();
        service
            .subscribe(recorder("steady", &ok_seen, StartAt::Latest))
            .await
            .unwrap();
        service
            .publish(event("component:default/poison", 1))
            .await
            .unwrap();
        service
            .publish(event("component:default/fine", 2))
            .await
            .unwrap();
        assert_eq!(
            wait_for(&ok_seen, 2).await.len(),
            2,
            "{}: the other subscriber is not held back",
            b.name
        );
        assert_eq!(
            wait_for(&flaky_seen, 1).await.len(),
            1,
            "{}: later events still flow",
            b.name
        );
        let dead = service.dead_events("flaky").await.unwrap();
        assert_eq!(dead.len(), 1, "{}", b.name);
        assert_eq!(
            (dead[0].attempts, dead[0].last_error.as_str()),
            (3, "downstream is down")
        );
        assert_eq!(
            *attempts.lock().unwrap(),
            3,
            "{}: tried max_attempts times",
            b.name
        );
        *healthy.lock().unwrap() = true;
        let report = service.replay_dead("flaky").await.unwrap();
        assert_eq!((report.delivered, report.failed), (1, 0), "{}", b.name);
        assert!(service.dead_events("flaky").await.unwrap().is_empty());
        assert_eq!(flaky_seen.lock().unwrap().len(), 2);
        service.shutdown().await;
    }
}

#[tokio::test]
async fn late_subscribers_start_at_the_newest_event_unless_they_replay_and_cursors_survive_restarts()
 {
    for b in backends::all().await {
        let service = EventsService::new(b.store.clone(), settings());
        publish_many(&service, 3, 1).await;
        let (late, replay): (Seen, Seen) = Default::default();
        service
            .subscribe(recorder("late", &late, StartAt::Latest))
            .await
            .unwrap();
        service
            .subscribe(recorder("replay", &replay, StartAt::Beginning))
            .await
            .unwrap();
        service
            .publish(event("component:default/new", 9))
            .await
            .unwrap();
        assert_eq!(wait_for(&replay, 4).await.len(), 4, "{}", b.name);
        assert_eq!(
            wait_for(&late, 1).await,
            vec![("component:default/new".to_string(), 9)],
            "{}",
            b.name
        );
        service.shutdown().await;

        // published while nobody runs: the durable cursor picks them up after a restart
        let down = EventsService::new(b.store.clone(), settings());
        down.publish(event("component:default/while-down", 10))
            .await
            .unwrap();
        let again: Seen = Default::default();
        let restarted = EventsService::new(b.store.clone(), settings());
        restarted
            .subscribe(recorder("late", &again, StartAt::Latest))
            .await
            .unwrap();
        assert_eq!(
            wait_for(&again, 1).await,
            vec![("component:default/while-down".to_string(), 10)],
            "{}",
            b.name
        );
        restarted.shutdown().await;
    }
}

#[tokio::test]
async fn one_process_at_a_time_delivers_a_shared_id_and_another_takes_over() {
    for b in backends::all().await {
        // two services on one database stand for two processes
        let first = EventsService::new(b.store.clone(), settings());
        let second = EventsService::new(b.store.clone(), settings());
        let (seen_first, seen_second): (Seen, Seen) = (Arc::default(), Arc::default());
        first
            .subscribe(recorder("shared", &seen_first, StartAt::Beginning))
            .await
            .unwrap();
        second
            .subscribe(recorder("shared", &seen_second, StartAt::Beginning))
            .await
            .unwrap();
        publish_many(&first, 5, 10).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let a = seen_first.lock().unwrap().clone();
        let c = seen_second.lock().unwrap().clone();
        assert_eq!(
            a.len() + c.len(),
            50,
            "{}: every event once while both run",
            b.name
        );
        assert!(
            a.is_empty() || c.is_empty(),
            "{}: one process holds the lease",
            b.name
        );
        // the holder stops; the other takes over after the lease and gets what follows
        let (holder, standby, standby_seen) = if a.is_empty() {
            (second, first, seen_first)
        } else {
            (first, second, seen_second)
        };
        holder.shutdown().await;
        publish_many(&standby, 5, 2).await;
        let got = wait_for(&standby_seen, 10).await;
        assert_eq!(got.len(), 10, "{}: the standby took over", b.name);
        standby.shutdown().await;
    }
}
