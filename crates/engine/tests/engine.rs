//! Tests against the real Docker Engine found like the docker CLI finds it.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use swarmkeeper_engine::{Engine, EngineError, EventKind};

use common::{busybox_size, docker, image_exists, image_tags, unique, Scratch};

fn engine() -> Engine {
    Engine::from_env().unwrap()
}

/// Engine timestamps come from the daemon's clock and ours from the test's; both are this
/// machine's, but allow for rounding.
fn assert_between(time: Timestamp, before: Timestamp, after: Timestamp) {
    let slack = jiff::SignedDuration::from_secs(2);
    assert!(
        time >= before - slack && time <= after + slack,
        "{time} is not between {before} and {after}"
    );
}

#[tokio::test]
async fn info_matches_the_docker_cli() {
    let engine = engine();
    engine.ping().await.unwrap();
    let info = engine.info().await.unwrap();
    assert_eq!(
        info.root_dir,
        PathBuf::from(docker(&["info", "--format", "{{.DockerRootDir}}"]))
    );
    assert_eq!(info.hostname, docker(&["info", "--format", "{{.Name}}"]));
    assert_eq!(
        info.server_version,
        docker(&["info", "--format", "{{.ServerVersion}}"])
    );
    let node_id = docker(&["info", "--format", "{{.Swarm.NodeID}}"]);
    assert_eq!(info.node_id, Some(node_id).filter(|id| !id.is_empty()));
}

#[tokio::test]
async fn system_df_sees_an_image_and_a_container() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:v1", unique("df"));
    let before = Timestamp::now();
    let id = scratch.build(&tag, None, 1 << 20);
    let name = unique("df-container");
    let container_id = scratch.create(&name, &tag);
    let after = Timestamp::now();

    let engine = engine();
    let df = engine.system_df().await.unwrap();
    let image = df
        .images
        .iter()
        .find(|i| i.id == id)
        .expect("the image is listed");
    assert_eq!(image.repo_tags, [tag.as_str()]);
    assert!(image.repo_digests.is_empty());
    let content = busybox_size() + (1 << 20);
    assert!(
        image.size >= content && image.size < content + 64 * 1024,
        "size {} for {content} bytes of files",
        image.size
    );
    assert!(image.shared_size <= image.size);
    assert_eq!(image.containers, 1);
    assert_between(image.created, before, after);
    assert!(df.layers_size >= image.size - image.shared_size);

    let listed = engine.list_images().await.unwrap();
    let cheap = listed
        .iter()
        .find(|i| i.id == id)
        .expect("listed by /images/json");
    assert_eq!(
        (cheap.size, &cheap.repo_tags),
        (image.size, &image.repo_tags)
    );
    assert_eq!(cheap.shared_size, 0, "API 1.41 does not share sizes here");

    let container = df
        .containers
        .iter()
        .find(|c| c.id == container_id)
        .expect("the container is listed");
    assert_eq!(container.image_id, id);
    assert_eq!(container.state, "created");
    assert_eq!(container.names, [name.as_str()]);
    assert_eq!(
        container.labels.get("skengtest").map(String::as_str),
        Some("1")
    );
    assert_between(container.created, before, after);

    let listed = engine.list_containers().await.unwrap();
    let summary = listed
        .iter()
        .find(|c| c.id == container_id)
        .expect("listed");
    assert_eq!(
        (
            &summary.image_id,
            summary.state.as_str(),
            &summary.names,
            summary.created
        ),
        (&id, "created", &vec![name], container.created)
    );
    assert_eq!(summary.labels, container.labels);
}

#[tokio::test]
async fn images_on_one_base_share_its_layer() {
    let mut scratch = Scratch::default();
    let base = format!("{}:base", unique("shared"));
    scratch.build(&base, None, 4096);
    let left = scratch.build(
        &format!("{}:left", unique("shared")),
        Some(&base),
        64 * 1024,
    );
    let right = scratch.build(
        &format!("{}:right", unique("shared")),
        Some(&base),
        64 * 1024,
    );

    let df = engine().system_df().await.unwrap();
    for id in [&left, &right] {
        let image = df.images.iter().find(|i| &i.id == id).expect("listed");
        assert!(
            image.shared_size >= busybox_size(),
            "{id} shares {} bytes",
            image.shared_size
        );
        let unique_bytes = image.size - image.shared_size;
        assert!(
            (64 * 1024..128 * 1024).contains(&unique_bytes),
            "{id} has {unique_bytes} bytes of its own"
        );
    }
}

#[tokio::test]
async fn remove_image_deletes_every_tag_and_succeeds_again() {
    let mut scratch = Scratch::default();
    let repo = unique("multi");
    let tags = [
        format!("{repo}:1"),
        format!("{repo}:2"),
        format!("{repo}-other:latest"),
    ];
    let id = scratch.build(&tags[0], None, 1024);
    docker(&["tag", &tags[0], &tags[1]]);
    docker(&["tag", &tags[0], &tags[2]]);
    assert_eq!(image_tags(&id).len(), 3);

    let engine = engine();
    engine.remove_image(&id).await.unwrap();
    assert!(!image_exists(&id));
    for tag in &tags {
        assert!(!image_exists(tag), "{tag} is left");
    }
    engine.remove_image(&id).await.unwrap();
}

#[tokio::test]
async fn remove_image_spares_the_image_its_old_tag_moved_to() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:latest", unique("moved"));
    let old = scratch.build(&tag, None, 1024);
    let new = scratch.build(&tag, None, 1024);
    let engine = engine();

    let df = engine.system_df().await.unwrap();
    let dangling = df.images.iter().find(|i| i.id == old).expect("listed");
    assert!(dangling.repo_tags.is_empty(), "{:?}", dangling.repo_tags);
    assert!(
        dangling.repo_digests.is_empty(),
        "{:?}",
        dangling.repo_digests
    );

    engine.remove_image(&old).await.unwrap();
    assert!(!image_exists(&old));
    assert_eq!(image_tags(&new), [tag]);
}

#[tokio::test]
async fn remove_image_refuses_an_image_a_stopped_container_uses() {
    let mut scratch = Scratch::default();
    let engine = engine();

    let single = format!("{}:1", unique("used"));
    let single_id = scratch.build(&single, None, 1024);
    let container = scratch.run(&unique("user"), &single, &["true"]);
    let err = engine.remove_image(&single_id).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(!err.is_not_found());
    assert!(
        matches!(err, EngineError::Api { status: 409, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(engine.host()), "{message}");
    assert!(message.contains("409"), "{message}");
    assert!(
        message.contains(&container[..12]),
        "the engine names the container: {message}"
    );
    assert_eq!(image_tags(&single_id), [single.as_str()]);

    let multi = unique("used-multi");
    let multi_tags = vec![format!("{multi}:1"), format!("{multi}:2")];
    let multi_id = scratch.build(&multi_tags[0], None, 1024);
    docker(&["tag", &multi_tags[0], &multi_tags[1]]);
    let multi_container = scratch.run(&unique("user"), &multi_tags[1], &["true"]);
    let err = engine.remove_image(&multi_id).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(
        matches!(&err, EngineError::ImageInUse { container, .. } if *container == multi_container),
        "{err:?}"
    );
    assert_eq!(image_tags(&multi_id), multi_tags, "no tag was stripped");

    engine.remove_container(&container).await.unwrap();
    engine.remove_image(&single_id).await.unwrap();
    assert!(!image_exists(&single_id));
}

#[tokio::test]
async fn remove_container_removes_a_stopped_one_and_refuses_a_running_one() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:1", unique("rm"));
    scratch.build(&tag, None, 1024);
    let engine = engine();

    let stopped = scratch.run(&unique("stopped"), &tag, &["true"]);
    engine.remove_container(&stopped).await.unwrap();
    assert!(!engine
        .list_containers()
        .await
        .unwrap()
        .iter()
        .any(|c| c.id == stopped));
    engine.remove_container(&stopped).await.unwrap();

    let running = scratch.run_detached(&unique("running"), &tag);
    let err = engine.remove_container(&running).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(engine
        .list_containers()
        .await
        .unwrap()
        .iter()
        .any(|c| c.id == running));
}

#[tokio::test]
async fn container_times_before_and_after_a_run() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:1", unique("times"));
    scratch.build(&tag, None, 1024);
    let engine = engine();

    let created = scratch.create(&unique("never-started"), &tag);
    let times = engine.container_times(&created).await.unwrap();
    assert_eq!((times.started_at, times.finished_at), (None, None));

    let before = Timestamp::now();
    let ran = scratch.run(&unique("ran"), &tag, &["sleep", "0.1"]);
    let after = Timestamp::now();
    let times = engine.container_times(&ran).await.unwrap();
    let (started, finished) = (times.started_at.unwrap(), times.finished_at.unwrap());
    assert_between(started, before, after);
    assert_between(finished, before, after);
    // The engine records StartedAt only after the process is running, so on a busy machine
    // even a sleep's run can look shorter than the sleep.
    assert!(started < finished, "{started} .. {finished}");
}

#[tokio::test]
async fn image_arrival_is_the_last_tag_time_else_the_build_time() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:1", unique("arrival"));
    let before = Timestamp::now();
    let id = scratch.build(&tag, None, 1024);
    let after = Timestamp::now();
    let engine = engine();

    let built = engine.image_arrival(&id).await.unwrap();
    assert_between(built, before, after);

    tokio::time::sleep(Duration::from_millis(50)).await;
    docker(&["tag", &tag, &format!("{}:2", unique("arrival"))]);
    let tagged = engine.image_arrival(&id).await.unwrap();
    assert!(
        tagged > built,
        "tagging moved the arrival: {built} -> {tagged}"
    );

    // `docker load` does not set LastTagTime: the build time is all the engine knows.
    let archive = common::temp_file("arrival.tar");
    docker(&["save", "-o", archive.to_str().unwrap(), &tag]);
    docker(&["rmi", "-f", &id]);
    docker(&["load", "-q", "-i", archive.to_str().unwrap()]);
    std::fs::remove_file(&archive).unwrap();
    let created: Timestamp = docker(&["image", "inspect", "--format", "{{.Created}}", &id])
        .parse()
        .unwrap();
    assert_eq!(engine.image_arrival(&id).await.unwrap(), created);
    assert!(created < built);
}

#[tokio::test]
async fn unknown_objects_are_not_found_errors_in_the_engines_words() {
    let engine = engine();
    let missing = unique("missing");
    let err = engine.container_times(&missing).await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("404") && message.contains(&missing),
        "{message}"
    );
    assert!(engine
        .image_arrival(&missing)
        .await
        .unwrap_err()
        .is_not_found());
    engine.remove_container(&missing).await.unwrap();
}

#[tokio::test]
async fn events_replay_a_build_and_a_container_run_since_a_time() {
    let mut scratch = Scratch::default();
    let engine = engine();
    let since = Timestamp::now();
    let tag = format!("{}:1", unique("events"));
    let image = scratch.build(&tag, None, 1024);
    let name = unique("events-container");
    let container = scratch.run(&name, &tag, &["true"]);

    // Subscribed only now: what happened since `since` comes from the engine's replay.
    let mut stream = engine.events(Some(since));
    let mut wanted = vec![
        (EventKind::Image, "tag", image.clone()),
        (EventKind::Container, "create", container.clone()),
        (EventKind::Container, "start", container.clone()),
        (EventKind::Container, "die", container.clone()),
    ];
    let mut ours = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !wanted.is_empty() {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no events {wanted:?} within 20s"))
            .expect("the stream goes on")
            .unwrap();
        if event.actor_id == image || event.actor_id == container {
            wanted.retain(|(kind, action, actor)| {
                (*kind, *action, actor.as_str())
                    != (event.kind, event.action.as_str(), event.actor_id.as_str())
            });
            ours.push(event);
        }
    }
    assert!(ours.iter().all(|e| e.time >= since), "{ours:#?}");
    assert!(ours.windows(2).all(|w| w[0].time <= w[1].time), "{ours:#?}");
    let tagged = ours.iter().find(|e| e.action == "tag").unwrap();
    assert_eq!(tagged.attributes.get("name"), Some(&tag));
    assert_eq!(tagged.image, None);
    for event in ours.iter().filter(|e| e.kind == EventKind::Container) {
        assert_eq!(event.image.as_ref(), Some(&tag), "{event:?}");
        assert_eq!(event.attributes.get("name"), Some(&name), "{event:?}");
    }
    let died = ours.iter().find(|e| e.action == "die").unwrap();
    assert_eq!(
        died.attributes.get("exitCode").map(String::as_str),
        Some("0")
    );
}

#[tokio::test]
async fn events_from_an_engine_that_is_not_there_end_with_an_error() {
    let host = format!("unix:///nonexistent/{}.sock", unique("events"));
    let mut stream = Engine::connect(&host).unwrap().events(None);
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&host), "{err}");
    assert!(stream.next().await.is_none());
}
