//! swarmkeeper's own services among the swarm's: removing the server stops this dashboard,
//! removing the agent stops image garbage collection on every node. A removal of either (or
//! of a stack holding them) says so in its confirmation, and the JSON API takes it only with
//! an explicit `confirm` naming what goes. A secret or config either uses is not rotated
//! from the dashboard ([`rotation_refusal`]). Pure.

use serde::Serialize;
use swarmkeeper_engine::{ServiceMode, ServiceView};

/// The label on the agent's service (`deploy/swarmkeeper.yml`, `deploy.labels`) or its
/// containers; `swarmkeeper gc plan` and volume removals find the agent by it too.
pub const AGENT_LABEL: &str = "swarmkeeper.agent";
/// The label on the server's service (`deploy/swarmkeeper.yml`, `deploy.labels`).
pub const SERVER_LABEL: &str = "swarmkeeper.server";

/// Which part of swarmkeeper a service runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnPart {
    /// `swarmkeeper server`: the dashboard and its JSON API.
    Server,
    /// `swarmkeeper agent`: image GC, disk accounting and reports, on every node.
    Agent,
}

/// The part of swarmkeeper `view` runs, if any: a service labelled [`SERVER_LABEL`] or
/// [`AGENT_LABEL`] `=true`, or (a stack deployed before the server's label existed) one whose
/// image is a `swarmkeeper` repository and whose arguments start with `server` or `agent`, as
/// `deploy/swarmkeeper.yml` writes them.
pub fn own_part(view: &ServiceView) -> Option<OwnPart> {
    let repository = view.image.name.rsplit('/').next().unwrap_or_default();
    let repository = repository.split([':', '@']).next().unwrap_or_default();
    let runs = |word: &str| {
        repository == "swarmkeeper" && view.args.first().is_some_and(|first| first == word)
    };
    if view.labelled(SERVER_LABEL, "true") || runs("server") {
        Some(OwnPart::Server)
    } else if view.labelled(AGENT_LABEL, "true") || runs("agent") {
        Some(OwnPart::Agent)
    } else {
        None
    }
}

/// What removing services that run `parts` does to swarmkeeper, in one sentence for a
/// confirmation; `None` when none is swarmkeeper's.
pub fn removal_warning(parts: &[OwnPart]) -> Option<String> {
    let server = parts.contains(&OwnPart::Server);
    let agent = parts.contains(&OwnPart::Agent);
    match (server, agent) {
        (true, true) => Some(
            "This removes swarmkeeper itself: this dashboard stops, and image garbage \
             collection stops on every node."
                .to_owned(),
        ),
        (true, false) => {
            Some("This removes swarmkeeper's own server: this dashboard stops.".to_owned())
        }
        (false, true) => Some(
            "This removes swarmkeeper's agent: image garbage collection stops on every node, \
             and the dashboard gets no more disk reports."
                .to_owned(),
        ),
        (false, false) => None,
    }
}

/// Whether a removal of `name` (a service or a stack) whose services run `parts` may go
/// ahead: always when none is swarmkeeper's; otherwise only when `confirm` is `name` — the
/// dashboard's form sends it after its confirmation said what stops. The refusal says what
/// stops and how to confirm.
pub fn check_removal(name: &str, parts: &[OwnPart], confirm: Option<&str>) -> Result<(), String> {
    match removal_warning(parts) {
        Some(warning) if confirm != Some(name) => Err(format!(
            "{warning} To remove {name} anyway, confirm it by name: `?confirm={name}`."
        )),
        _ => Ok(()),
    }
}

/// One of swarmkeeper's own services that uses a secret or config: its name, the part it
/// runs, and the file its tasks read it from (`File.Name`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnUser<'a> {
    pub service: &'a str,
    pub part: OwnPart,
    pub target: &'a str,
}

/// The README section that says how to change swarmkeeper's own secrets instead.
pub const OWN_SECRETS_README: &str = "README.md, \"Rotating swarmkeeper's own secrets\"";

/// Why `kind` `name` may not be rotated from the dashboard when swarmkeeper's own services
/// `users` use it; `None` when none does. A rotation moves the server (stop-first: this
/// dashboard restarts in the middle of it); a new seal key cannot open the alert channels and
/// registry credentials sealed with the old one (`swarmkeeper_auth::SECRET_KEY_SECRET_FILE`);
/// and Swarm does not move the agent's task on a paused or drained node, which keeps the old
/// report secret (the server accepts it during a grace, `AppState::report_secret`).
pub fn rotation_refusal(kind: &str, name: &str, users: &[OwnUser<'_>]) -> Option<String> {
    if users.is_empty() {
        return None;
    }
    let services: Vec<String> = users
        .iter()
        .map(|u| {
            let part = match u.part {
                OwnPart::Server => "server",
                OwnPart::Agent => "agent",
            };
            format!("{} (its {part})", u.service)
        })
        .collect();
    let key_file = swarmkeeper_auth::SECRET_KEY_SECRET_FILE
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let mut why = format!(
        "{kind} {name} is swarmkeeper's own, used by {}; it is not rotated from the dashboard:",
        services.join(", ")
    );
    if users.iter().any(|u| u.part == OwnPart::Server) {
        why.push_str(" moving the server restarts this dashboard in the middle of the rotation;");
    }
    if users
        .iter()
        .any(|u| u.part == OwnPart::Server && u.target.rsplit('/').next() == Some(key_file))
    {
        why.push_str(
            " it is the key every alert channel and registry credential is sealed with, and a \
             new value cannot open them: re-key it instead (its page, or POST \
             /api/secrets/NAME/rekey);",
        );
    }
    if users.iter().any(|u| u.part == OwnPart::Agent) {
        why.push_str(
            " Swarm does not move the agents on paused or drained nodes, so the server accepts \
             the previous secret from them after its restart until every node's agent reports \
             with the new one (the secret's page says which still use it);",
        );
    }
    why.pop();
    why.push_str(&format!(". Change it as {OWN_SECRETS_README} says."));
    Some(why)
}

/// What scaling service `name`, which runs `part`, to `replicas` stops, when that needs the
/// operator to confirm it: swarmkeeper's own server scaled to 0 stops this dashboard with
/// nothing left in it to start the server again. `None` for any other scale.
pub fn scale_warning(name: &str, part: Option<OwnPart>, replicas: u64) -> Option<String> {
    match part {
        Some(OwnPart::Server) if replicas == 0 => Some(format!(
            "Scaling {name} to 0 stops swarmkeeper's own server: this dashboard stops, and only \
             `docker service scale {name}=1` on a manager brings it back."
        )),
        _ => None,
    }
}

/// Whether scaling service `name`, which runs `part`, to `replicas` may go ahead: always, but
/// when [`scale_warning`] has a warning, which needs `confirm` = `name`, as a removal does
/// ([`check_removal`]). The refusal says what stops, the way back and how to confirm in JSON
/// (the page asks for the name in a field instead).
pub fn check_scale(
    name: &str,
    part: Option<OwnPart>,
    replicas: u64,
    confirm: Option<&str>,
) -> Result<(), String> {
    match scale_warning(name, part, replicas) {
        Some(warning) if confirm != Some(name) => Err(format!(
            "{warning} To scale it to 0 anyway, confirm it by name: `\"confirm\": \"{name}\"`."
        )),
        _ => Ok(()),
    }
}

/// Whether an edit of service `name`, which runs `part`, that changes its placement
/// constraints (`moves`) may go ahead: always, but for swarmkeeper's own server, whose
/// state (users, tokens, alert channels, history) lives in a volume of the node it runs on:
/// on a node the new constraints pick instead it starts with an empty state, and the first
/// visitor is asked to create the admin. That needs `confirm`, as a node label change that
/// moves it does.
pub fn check_server_move(
    name: &str,
    part: Option<OwnPart>,
    moves: bool,
    confirm: bool,
) -> Result<(), String> {
    match part {
        Some(OwnPart::Server) if moves && !confirm => Err(format!(
            "This changes where {name}, swarmkeeper's own server, may run: its state (users, \
             tokens, alert channels, history) lives in a volume on the node it runs on now, and \
             on another node it starts empty, asking for a first admin (README, \"Where the \
             history and the server's state live\"). To change it anyway, confirm it: Apply \
             after this preview on the page, `\"confirm\": true` in the API."
        )),
        _ => Ok(()),
    }
}

/// Whether an edit of service `name`, which runs `part`, from the spec `before` to `after`
/// may go ahead — the form's edit and "edit as compose" (of the service or of its stack) ask
/// the same: for swarmkeeper's own server, a change of its placement constraints
/// ([`check_server_move`]) or of its replicas to 0 (what [`check_scale`] guards: this
/// dashboard stops) needs `confirmed` — the page's Apply after a preview that said it, or
/// `"confirm": true` in the API. The refusal says what stops and how to confirm.
pub fn check_edit(
    name: &str,
    part: Option<OwnPart>,
    before: &ServiceView,
    after: &ServiceView,
    confirmed: bool,
) -> Result<(), String> {
    check_server_move(
        name,
        part,
        after.constraints != before.constraints,
        confirmed,
    )?;
    let stops =
        matches!(after.mode, ServiceMode::Replicated { replicas: 0 }) && before.mode != after.mode;
    match part {
        Some(OwnPart::Server) if stops && !confirmed => Err(format!(
            "This scales {name}, swarmkeeper's own server, to 0: this dashboard stops, and only \
             `docker service scale {name}=1` on a manager brings it back. To change it anyway, \
             confirm it: Apply after this preview on the page, `\"confirm\": true` in the API."
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(spec: serde_json::Value) -> ServiceView {
        ServiceView::read(&spec).unwrap()
    }

    fn spec(image: &str, args: &[&str], labels: serde_json::Value) -> serde_json::Value {
        json!({"Name": "x", "Labels": labels,
               "TaskTemplate": {"ContainerSpec": {"Image": image, "Args": args}}})
    }

    #[test]
    fn swarmkeepers_services_are_known_by_label_or_by_image_and_command() {
        let part = |image, args: &[&str], labels| own_part(&view(spec(image, args, labels)));
        assert_eq!(
            part("swarmkeeper:0.1.0", &["server"], json!({})),
            Some(OwnPart::Server)
        );
        assert_eq!(
            part(
                "registry.example.com:5000/ops/swarmkeeper:0.1.0@sha256:ab",
                &["agent"],
                json!({})
            ),
            Some(OwnPart::Agent)
        );
        assert_eq!(
            part("busybox", &[], json!({"swarmkeeper.agent": "true"})),
            Some(OwnPart::Agent)
        );
        assert_eq!(
            part("busybox", &[], json!({"swarmkeeper.server": "true"})),
            Some(OwnPart::Server)
        );
        assert_eq!(part("busybox", &["server"], json!({})), None);
        assert_eq!(part("swarmkeeper:0.1.0", &["lint"], json!({})), None);
    }

    #[test]
    fn removing_swarmkeeper_needs_its_name_as_confirmation() {
        let both = [OwnPart::Agent, OwnPart::Server];
        let refused = check_removal("swarmkeeper", &both, None).unwrap_err();
        assert!(refused.contains("this dashboard stops"), "{refused}");
        assert!(refused.contains("every node"), "{refused}");
        assert!(refused.contains("?confirm=swarmkeeper"), "{refused}");
        assert!(check_removal("swarmkeeper", &both, Some("other")).is_err());
        assert!(check_removal("swarmkeeper", &both, Some("swarmkeeper")).is_ok());
        assert!(check_removal("web", &[], None).is_ok());
        let agent = removal_warning(&[OwnPart::Agent]).unwrap();
        assert!(!agent.contains("dashboard stops"), "{agent}");
    }

    #[test]
    fn swarmkeepers_own_secrets_are_not_rotated_from_the_dashboard() {
        let server = |target| OwnUser {
            service: "swarmkeeper_server",
            part: OwnPart::Server,
            target,
        };
        let agent = OwnUser {
            service: "swarmkeeper_agent",
            part: OwnPart::Agent,
            target: "swarmkeeper_report_secret",
        };
        assert_eq!(rotation_refusal("secret", "db_pw", &[]), None);
        let key = rotation_refusal(
            "secret",
            "swarmkeeper_secret_key",
            &[server("swarmkeeper_secret_key")],
        )
        .unwrap();
        assert!(
            key.contains("used by swarmkeeper_server (its server)"),
            "{key}"
        );
        assert!(key.contains("restarts this dashboard"), "{key}");
        assert!(key.contains("a new value cannot open them"), "{key}");
        assert!(!key.contains("paused"), "{key}");
        assert!(
            key.ends_with("Change it as README.md, \"Rotating swarmkeeper's own secrets\" says."),
            "{key}"
        );
        let report = rotation_refusal(
            "secret",
            "swarmkeeper_report_secret",
            &[server("swarmkeeper_report_secret"), agent],
        )
        .unwrap();
        assert!(report.contains("paused or drained nodes"), "{report}");
        assert!(!report.contains("cannot open"), "{report}");
        let agent_only = rotation_refusal("config", "agent_conf", &[agent]).unwrap();
        assert!(
            !agent_only.contains("dashboard in the middle"),
            "{agent_only}"
        );
        assert!(
            agent_only.starts_with("config agent_conf is swarmkeeper's own"),
            "{agent_only}"
        );
    }

    #[test]
    fn the_own_server_scaled_to_zero_or_moved_needs_a_confirm() {
        let server = Some(OwnPart::Server);
        let name = "swarmkeeper_server";
        let refused = check_scale(name, server, 0, None).unwrap_err();
        assert!(
            refused.starts_with("Scaling swarmkeeper_server to 0 stops swarmkeeper's own server"),
            "{refused}"
        );
        assert!(
            refused.ends_with("`\"confirm\": \"swarmkeeper_server\"`."),
            "{refused}"
        );
        assert!(check_scale(name, server, 0, Some("other")).is_err());
        assert!(check_scale(name, server, 0, Some(name)).is_ok());
        assert!(check_scale(name, server, 2, None).is_ok());
        assert!(check_scale("web", None, 0, None).is_ok());
        assert!(check_scale("swarmkeeper_agent", Some(OwnPart::Agent), 0, None).is_ok());

        let refused = check_server_move(name, server, true, false).unwrap_err();
        assert!(
            refused.contains("on another node it starts empty"),
            "{refused}"
        );
        assert!(check_server_move(name, server, true, true).is_ok());
        assert!(check_server_move(name, server, false, false).is_ok());
        assert!(check_server_move("web", None, true, false).is_ok());
    }

    #[test]
    fn an_edit_that_moves_the_server_or_scales_it_to_zero_needs_a_confirmation() {
        let read = |replicas: u64, constraints: &[&str]| {
            view(json!({"Name": "sk_server",
                "Mode": {"Replicated": {"Replicas": replicas}},
                "TaskTemplate": {"ContainerSpec": {"Image": "swarmkeeper:1", "Args": ["server"]},
                                 "Placement": {"Constraints": constraints}}}))
        };
        let server = Some(OwnPart::Server);
        let now = read(1, &["node.role==manager"]);
        let check = |after: &ServiceView, part, confirmed| {
            check_edit("sk_server", part, &now, after, confirmed)
        };
        assert_eq!(check(&now, server, false), Ok(()), "no change");
        assert_eq!(
            check(&read(3, &["node.role==manager"]), server, false),
            Ok(())
        );
        let moved = read(1, &["node.hostname==b"]);
        let why = check(&moved, server, false).unwrap_err();
        assert!(why.contains("on another node it starts empty"), "{why}");
        assert_eq!(check(&moved, server, true), Ok(()));
        let stopped = read(0, &["node.role==manager"]);
        let why = check(&stopped, server, false).unwrap_err();
        assert!(
            why.contains("this dashboard stops") && why.contains("\"confirm\": true"),
            "{why}"
        );
        assert_eq!(check(&stopped, server, true), Ok(()));
        // Another service, or the agent, is edited freely.
        assert_eq!(check(&stopped, None, false), Ok(()));
        assert_eq!(check(&moved, Some(OwnPart::Agent), false), Ok(()));
        // A server already at 0 that stays there stops nothing more.
        assert_eq!(
            check_edit("sk_server", server, &stopped, &stopped, false),
            Ok(())
        );
    }
}
