//! Instances sharing one Postgres database share each Page's send rate:
//! together they stay within `SEND_RATE_PER_PAGE` (see `workers::instances`).

use wiremock::MockServer;

use crate::helpers::*;
use lexbridge::startup::Options;

#[tokio::test]
async fn instances_on_one_postgres_database_share_each_pages_send_rate() {
    let Some(backend) = backends()
        .into_iter()
        .find(|b| matches!(b, Backend::Postgres(_)))
    else {
        return;
    };
    let first = spawn_app(&backend).await;
    let share = |app: &TestApp| app.shared.limiter.shared_among();
    wait_until("the first instance recorded", || async {
        first.count("SELECT COUNT(*) FROM instances").await == 1
    })
    .await;
    assert_eq!(share(&first), 1);

    let graph = MockServer::start().await;
    let second = start(first.db.shared_postgres(), graph, Options::default(), &[]).await;
    wait_until("both instances counting two", || async {
        share(&first) == 2 && share(&second) == 2
    })
    .await;
    assert!(first.metrics().await.contains("lexbridge_instances 2\n"));

    // A stopped instance removes itself: the other takes the whole rate.
    second.stop().await;
    wait_until("the first alone again", || async { share(&first) == 1 }).await;

    // One killed without a word is forgotten once it has been silent for
    // the staleness limit (10 s); here its last word is made a minute old.
    first
        .exec(
            "INSERT INTO instances (id, started_at, seen_at)
             VALUES ('killed', 0, CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT))",
        )
        .await;
    wait_until("the killed instance counted", || async {
        share(&first) == 2
    })
    .await;
    first
        .exec("UPDATE instances SET seen_at = seen_at - 60000 WHERE id = 'killed'")
        .await;
    wait_until("the killed instance forgotten", || async {
        share(&first) == 1
    })
    .await;
    assert_eq!(first.count("SELECT COUNT(*) FROM instances").await, 1);
    first.stop().await;
}
