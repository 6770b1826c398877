//! `Engine::from_env` reads `DOCKER_HOST`. A binary of its own, because changing the environment
//! while other tests run in parallel threads would race with them.

use swarmkeeper_engine::{Engine, EngineError, DEFAULT_HOST};

#[tokio::test]
async fn from_env_follows_docker_host() {
    let original = std::env::var("DOCKER_HOST").ok();

    std::env::set_var("DOCKER_HOST", "unix:///nonexistent.sock");
    let engine = Engine::from_env().unwrap();
    assert_eq!(engine.host(), "unix:///nonexistent.sock");
    let err = engine.ping().await.unwrap_err();
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains("unix:///nonexistent.sock"),
        "{err}"
    );
    assert!(!err.is_not_found() && !err.is_conflict());

    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    std::env::set_var("DOCKER_HOST", "tcp://127.0.0.1:1");
    let err = Engine::from_env().unwrap().info().await.unwrap_err();
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("tcp://127.0.0.1:1"), "{err}");

    std::env::set_var("DOCKER_HOST", "ssh://user@host");
    let err = Engine::from_env().unwrap_err();
    assert!(matches!(err, EngineError::InvalidHost { .. }), "{err:?}");
    assert!(err.to_string().contains("ssh://user@host"), "{err}");

    std::env::set_var("DOCKER_HOST", "");
    assert_eq!(Engine::from_env().unwrap().host(), DEFAULT_HOST);
    std::env::remove_var("DOCKER_HOST");
    assert_eq!(Engine::from_env().unwrap().host(), DEFAULT_HOST);

    // The engine these tests run against, named explicitly, answers.
    let real = original.clone().unwrap_or_else(|| DEFAULT_HOST.to_string());
    std::env::set_var("DOCKER_HOST", &real);
    let engine = Engine::from_env().unwrap();
    assert_eq!(engine.host(), real);
    engine.ping().await.unwrap();

    match original {
        Some(host) => std::env::set_var("DOCKER_HOST", host),
        None => std::env::remove_var("DOCKER_HOST"),
    }
}
