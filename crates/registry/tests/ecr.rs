//! ECR's token exchange against moto (an AWS API emulator, in server mode) with signature
//! checking on, then the token it returns authenticating against a real registry.
//!
//! moto checks SigV4 signatures only for access keys of its own IAM, and lets the first
//! `INITIAL_NO_AUTH_ACTION_COUNT` requests through unchecked: those create the user, its key
//! and its policy; every call of ours after that is verified.

mod common;

use std::process::{Command, Stdio};

use common::*;
use swarmkeeper_registry::ecr::{AwsCredentials, CredentialSource, EcrError, EcrTokenSource};
use swarmkeeper_registry::{Client, Reference, Secret};

const SETUP: &str = r#"
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="swarmkeeper")
key = iam.create_access_key(UserName="swarmkeeper")["AccessKey"]
iam.put_user_policy(UserName="swarmkeeper", PolicyName="ecr-login", PolicyDocument=json.dumps(
    {"Version": "2012-10-17",
     "Statement": [{"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}]}))
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

struct Moto {
    endpoint: String,
    _process: Process,
}

impl Moto {
    fn start() -> Option<Moto> {
        if !have("python3", "moto") || !have_python_module("moto.server") {
            return None;
        }
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run moto.server");
        let mut process = Process(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                process.0.try_wait().unwrap().is_none(),
                "moto.server exited"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "moto.server does not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Some(Moto {
            endpoint: format!("http://127.0.0.1:{port}/"),
            _process: process,
        })
    }

    /// An IAM user allowed `ecr:GetAuthorizationToken`, and its access key.
    fn user(&self) -> (String, String) {
        let out = Command::new("python3")
            .args(["-c", SETUP, &self.endpoint])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "IAM setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (id, secret) = text.trim().split_once(' ').unwrap();
        (id.to_string(), secret.to_string())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn ecr_token_from_moto_authenticates_against_a_registry() {
    let Some(moto) = Moto::start() else { return };
    let (key_id, secret) = moto.user();

    // A wrong secret: moto recomputes the signature and refuses.
    let wrong = CredentialSource::Static(AwsCredentials::new(&key_id, "not-the-secret", None));
    let err = EcrTokenSource::with_endpoint(wrong, "us-east-1", &moto.endpoint)
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    match &err {
        EcrError::Aws { status, code, .. } => {
            assert_eq!(*status, 403, "{err}");
            assert_eq!(code, "SignatureDoesNotMatch", "{err}");
        }
        other => panic!("expected AWS's refusal, got {other}"),
    }
    assert!(!err.to_string().contains("not-the-secret"));

    // The right key, from the default chain's shared credentials file and a profile (this
    // test binary holds this one test, so its environment is its own).
    let aws = tempfile::tempdir().unwrap();
    let file = aws.path().join("credentials");
    std::fs::write(
        &file,
        format!("[default]\naws_access_key_id = AKIAWRONG\naws_secret_access_key = x\n\n[ci]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &file);
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    let source = EcrTokenSource::with_endpoint(
        CredentialSource::DefaultChain {
            profile: Some("ci".into()),
        },
        "us-east-1",
        &moto.endpoint,
    )
    .unwrap();
    let token = source.fetch().await.unwrap();
    assert_eq!(token.auth.username, "AWS");
    assert_eq!(
        token.auth.server_address,
        "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    );
    let password = token.auth.password.clone().unwrap();
    assert!(!password.is_empty());
    assert!(!format!("{token:?}").contains(password.expose()));
    // moto's tokens come already expired (2015): the cache never hands one out twice.
    assert!(token.needs_refresh(std::time::SystemTime::now()));
    let again = source.auth_config().await.unwrap();
    assert_eq!(again.password, Some(password.clone()));

    // The token logs in to a registry whose user is the one ECR gives (`AWS`), as
    // `aws ecr get-login-password | docker login -u AWS --password-stdin` does.
    let (Some(registry), Some(cli)) = (
        Registry::htpasswd(&token.auth.username, password.expose()),
        DockerCli::new(),
    ) else {
        return;
    };
    cli.login(&registry.addr, "AWS", password.expose());
    let repo = format!("{}/{}", registry.addr, repository("ecr"));
    let pushed = cli.push(&format!("{repo}:1"), "ecr");
    let digest = Client::new()
        .unwrap()
        .manifest_digest(
            &Reference::parse(&format!("{repo}:1")).unwrap(),
            Some(&token.auth),
        )
        .await
        .unwrap();
    assert_eq!(digest.to_string(), pushed);
    let _: Secret = password;
}
