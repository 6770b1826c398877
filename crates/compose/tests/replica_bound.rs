//! Tryout 8 finding 3: one bound on replicas, [`MAX_REPLICAS`], shared by compose files, the
//! dashboard's service form and the scale route.

mod support;

use support::load_one;
use swarmkeeper_compose::{check_replicas, MAX_REPLICAS};

#[test]
fn the_bound_is_500_replicas_and_the_refusal_says_so() {
    assert_eq!(MAX_REPLICAS, 500);
    assert_eq!(check_replicas(0), Ok(()));
    assert_eq!(check_replicas(500), Ok(()));
    assert_eq!(
        check_replicas(501),
        Err("501 is more than 500; scale in steps or with the docker CLI".to_owned())
    );
    assert!(check_replicas(u64::MAX).is_err());
}

#[test]
fn a_compose_file_asking_for_more_is_refused_at_its_line_and_column() {
    let text = "services:\n  web:\n    image: a:1\n    deploy:\n      replicas: 999999999999\n";
    let error = load_one(text).unwrap_err();
    assert_eq!((error.line, error.column), (5, 17), "{error}");
    assert_eq!(
        error.message,
        "replicas: 999999999999 is more than 500; scale in steps or with the docker CLI"
    );
    assert!(load_one(&text.replace("999999999999", "500")).is_ok());
}
