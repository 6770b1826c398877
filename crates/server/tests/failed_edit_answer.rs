//! What `PUT /api/services/{name}` answers when the edit fails: the deploy engine rolls the
//! service back, and the answer says the service was not edited (as a failed create says
//! `not created`), never `edited`, with the outcome `rolled back`.

mod support;

use serde_json::json;
use support::{test_image, unique, Call, TestApp, TestService, TEST_LABEL};

#[tokio::test]
async fn an_edit_rolled_back_answers_not_edited() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("failedit");
    let service = TestService { name: name.clone() };
    let _history = support::TestStack { name: name.clone() };
    let form = json!({
        "name": name,
        "image": test_image(),
        "command": "/bin/busybox sleep 3600",
        "replicas": 1,
        "labels": [TEST_LABEL],
        "update_monitor": "2s",
        "restart_delay": "1s",
        "log_driver": "local",
    });
    let created = app
        .call(Call::post("/api/services").bearer(&op.token).json(&form))
        .await;
    created.expect(201);
    assert_eq!(created.json()["action"], "created");
    service.wait_running(1);

    let mut broken = form.clone();
    broken["command"] = json!("/bin/busybox sh -c 'exit 1'");
    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&broken),
        )
        .await;
    answer.expect(409);
    let edited = answer.json();
    assert_eq!(edited["outcome"], "rolled back", "{edited}");
    assert_eq!(edited["succeeded"], false, "{edited}");
    assert_eq!(edited["action"], "not edited", "{edited}");
    assert_eq!(
        service.spec()["TaskTemplate"]["ContainerSpec"]["Args"],
        json!(["/bin/busybox", "sleep", "3600"])
    );
}
