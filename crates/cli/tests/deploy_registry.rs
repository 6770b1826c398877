//! Digest pinning with and without `--no-registry-auth`, against real registries on loopback
//! (Debian's `docker-registry`): one anyone may pull from, one behind htpasswd. A public image
//! is pinned either way, so toggling the flag changes no spec; a private image whose digest
//! the registry refuses to give without credentials is deployed by tag, and the deploy says so
//! once.

#[path = "../../registry/tests/common/mod.rs"]
mod registry_support;
mod support;

use std::path::Path;
use std::process::{Command, Output};

use registry_support::{repository, DockerCli, Registry};
use support::deploy::{images, service, stack_file, text, Stack};

const USER: &str = "ci";
const PASSWORD: &str = "s3cret-pin-pw";

/// `swarmkeeper deploy` of `file` with the docker CLI configuration in `config`.
fn deploy(stack: &Stack, config: &Path, file: &Path, extra: &[&str]) -> Output {
    let out = stack
        .command()
        .env("DOCKER_CONFIG", config)
        .args(["deploy", "--progress", "plain", "--timeout", "60s", "-c"])
        .arg(file)
        .args(extra)
        .arg(&stack.name)
        .output()
        .unwrap();
    assert!(!text(&out).contains(PASSWORD), "a credential was printed");
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// The pushed images have no command of their own.
const SLEEP: &str = "    command: [\"/bin/busybox\", \"sleep\", \"3600\"]\n";

fn image(stack: &Stack) -> String {
    stack.spec("web", "{{.Spec.TaskTemplate.ContainerSpec.Image}}")
}

#[test]
fn a_public_image_is_pinned_with_or_without_registry_auth_and_a_refusal_deploys_the_tag_once() {
    let (Some(public), Some(private), Some(cli)) = (
        Registry::anonymous(),
        Registry::htpasswd(USER, PASSWORD),
        DockerCli::new(),
    ) else {
        return;
    };
    images();
    cli.login(&private.addr, USER, PASSWORD);
    let config = cli.config_dir.path();
    let stack = Stack::new("pin");
    let public_repo = format!("{}/{}", public.addr, repository("pin-public"));
    let v1 = cli.push(&format!("{public_repo}:1"), "public-v1");
    let file = stack.file(
        "public.yml",
        &stack_file(&[service("web", &format!("{public_repo}:1"), 1, SLEEP)]),
    );

    // Without credentials the public registry still gives the digest: pinned.
    deploy(&stack, config, &file, &["--no-registry-auth"]);
    assert_eq!(image(&stack), format!("{public_repo}:1@{v1}"));
    // Toggling the flag changes nothing: no spec written, no task restarted.
    for extra in [&[][..], &["--no-registry-auth"][..]] {
        let out = deploy(&stack, config, &file, extra);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("web: unchanged"),
            "{extra:?}: {}",
            text(&out)
        );
    }
    // The tag moves: the next deploy without credentials pins the new digest.
    let v2 = cli.push(&format!("{public_repo}:1"), "public-v2");
    deploy(&stack, config, &file, &["--no-registry-auth"]);
    assert_eq!(image(&stack), format!("{public_repo}:1@{v2}"));

    // A private image the engine already has: the registry refuses an anonymous lookup, so
    // the tag is deployed as it is, and the deploy says so once.
    let private_repo = format!("{}/{}", private.addr, repository("pin-private"));
    let reference = format!("{private_repo}:1");
    cli.push(&reference, "private-v1");
    let pull = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .args(["pull", "-q", &reference])
        .output()
        .unwrap();
    assert!(pull.status.success(), "{}", text(&pull));
    let file = stack.file(
        "private.yml",
        &stack_file(&[service("web", &reference, 1, SLEEP)]),
    );
    let out = deploy(&stack, config, &file, &["--no-registry-auth"]);
    let said = String::from_utf8_lossy(&out.stdout);
    let warning = format!(
        "warning: image {reference}: the registry gives no digest without credentials, and \
         none are sent"
    );
    assert_eq!(said.matches(&warning).count(), 1, "{}", text(&out));
    assert_eq!(
        said.matches("could not be resolved").count(),
        0,
        "{}",
        text(&out)
    );
    assert_eq!(image(&stack), reference);
    drop(stack);
    let _ = Command::new("docker")
        .args(["image", "rm", &reference])
        .output();
}
