//! An environment variable written without a value (`environment: [FOO]`, `FOO:`) follows
//! one rule (`bare_variable`), the one the dashboard's form uses too: the deploying
//! environment's value as in the docker CLI, else refused where it is written (tryout 7,
//! finding 3: the compose path sent the bare name, the form refused it).

mod support;

use swarmkeeper_compose::bare_variable;

fn env(stack: &swarmkeeper_compose::Stack) -> Vec<String> {
    let spec = swarmkeeper_compose::service_spec("demo", "web", &stack.services["web"], stack);
    spec.task_template.container_spec.env
}

#[test]
fn a_bare_name_takes_the_deploying_environments_value() {
    for text in [
        "services:\n  web:\n    image: nginx:1\n    environment: [A=1, FOO]\n",
        "services:\n  web:\n    image: nginx:1\n    environment:\n      A: 1\n      FOO:\n",
    ] {
        let stack = support::load_files(&[("stack.yml", text)], &[("FOO", "from shell")]).unwrap();
        assert_eq!(env(&stack), ["A=1", "FOO=from shell"], "{text}");
    }
}

#[test]
fn a_bare_name_with_no_value_to_take_is_refused_where_it_is_written() {
    for (text, line, column) in [
        (
            "services:\n  web:\n    image: nginx:1\n    environment: [A=1, NOEQUALS]\n",
            4,
            24,
        ),
        (
            "services:\n  web:\n    image: nginx:1\n    environment:\n      - A=1\n      - NOEQUALS\n",
            6,
            9,
        ),
        (
            "services:\n  web:\n    image: nginx:1\n    environment:\n      A: 1\n      NOEQUALS:\n",
            6,
            7,
        ),
    ] {
        let e = support::load_one(text).unwrap_err();
        assert_eq!((e.line, e.column), (line, column), "{e}");
        assert_eq!(
            e.message,
            bare_variable("NOEQUALS", |_| None).unwrap_err(),
            "{e}"
        );
        assert!(e.message.contains("NOEQUALS=VALUE"), "{e}");
    }
}

#[test]
fn an_empty_value_is_a_value() {
    let text = "services:\n  web:\n    image: nginx:1\n    environment: [EMPTY=]\n";
    let stack = support::load_one(text).unwrap();
    assert_eq!(env(&stack), ["EMPTY="]);
}

#[test]
fn an_env_file_line_with_a_name_alone_keeps_the_docker_clis_rule() {
    let text = "services:\n  web:\n    image: nginx:1\n    env_file: app.env\n";
    let stack = support::load_in(
        support::WORKING_DIR,
        &[("stack.yml", text)],
        &[],
        &[("/srv/app/app.env", "A=1\nUNSET\n")],
    )
    .unwrap();
    assert_eq!(env(&stack), ["A=1"]);
}
