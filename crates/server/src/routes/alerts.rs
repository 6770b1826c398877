//! `/alerts` (admin): where alerts go (channels: add, send a test, remove), the rules
//! (thresholds, durations, switched off), silences (create, expire), the ongoing alerts; and
//! `/alerts/history` (anyone who may view the cluster): every firing and resolved message
//! sent. A channel's settings are sealed before they are stored and never shown again, in a
//! page, the API, a log or the audit log (which records who added, tested or removed which
//! channel, changed the rules or silenced what).

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use swarmkeeper_alerts::{Alert, AlertRules, RuleId, Silence, SilenceError};
use swarmkeeper_auth::{Action, SealingKey};
use swarmkeeper_engine::EngineError;
use swarmkeeper_notify::{url_host, Channel, ChannelKind, EmailChannel, Secret, SmtpTls};
use swarmkeeper_store::{AlertRecord, StoredChannel, StoredSilence};

use crate::access::Caller;
use crate::alerting::{channel_purpose, silence_of, ChannelRow, HISTORY_SHOWN};
use crate::error::AppError;
use crate::respond::{optional_number, refused, refused_fields, Format, Input, Reply};
use crate::sealed;
use crate::state::AppState;
use crate::views::alert_rules::{self, RulesForm};
use crate::views::{message_of, FieldError, Retype};

/// What to do without a key, as the page and the API say it.
pub const NO_KEY: &str = "alert channels are stored sealed with the server's secret key, and \
     none is set: create it (`openssl rand -hex 32 | docker secret create \
     swarmkeeper_secret_key -`) and add it to the server's secrets (it is read from \
     /run/secrets/swarmkeeper_secret_key, or give --secret-key-file), or give the channel as \
     code with --alert-webhook";

/// The Alerts page's data.
#[derive(Serialize)]
pub struct AlertsView {
    pub channels: Vec<ChannelRow>,
    pub rules: AlertRules,
    /// The rules as the form edits them: a fieldset per rule.
    #[serde(skip)]
    pub rules_form: RulesForm,
    /// The rules as "edit as JSON" shows them (pretty JSON).
    #[serde(skip)]
    pub rules_text: String,
    /// Why the JSON just posted was refused.
    #[serde(skip)]
    pub rules_json_error: Option<String>,
    /// The rule names a silence may match.
    pub rule_names: Vec<&'static str>,
    /// Pending and firing alerts.
    pub alerts: Vec<Alert>,
    /// Silences that have not ended.
    pub silences: Vec<SilenceRow>,
    /// Whether the server can seal channel settings (it has a secret key).
    pub can_store_secrets: bool,
    /// What to do without a key; `None` (JSON `null`) when the server has one.
    pub no_key: Option<&'static str>,
    /// The outcome of a test just sent from the page.
    #[serde(skip)]
    pub tested: Option<Tested>,
    /// Why the channel just posted was refused: every field that is wrong, each once.
    #[serde(skip)]
    pub channel_errors: Vec<FieldError>,
    /// The channel form as it was posted when it was refused (never a secret); empty otherwise.
    #[serde(skip)]
    pub channel_form: ChannelForm,
    /// Why the silence just posted was refused: every field that is wrong, each once.
    #[serde(skip)]
    pub silence_errors: Vec<FieldError>,
    /// The silence form as it was posted when it was refused (it has no secret); `None`: the
    /// form's defaults.
    #[serde(skip)]
    pub silence_form: Option<NewSilence>,
    /// The silence just made matches nothing now (see [`unmatched_warning`]).
    #[serde(skip)]
    pub silence_warning: Option<String>,
}

page!(AlertsView, "alerts.html", "alerts");

/// The channel form's fields, in the form's order: the order its errors are said in.
const CHANNEL_FIELDS: &[&str] = &[
    "name", "type", "url", "host", "port", "tls", "password", "from", "to", "ca_pem",
];

impl AlertsView {
    /// Why the channel form's `field` was refused, if it was.
    pub fn channel_error_of(&self, field: &str) -> Option<&str> {
        message_of(&self.channel_errors, field)
    }

    /// Why the silence form's `field` was refused, if it was.
    pub fn silence_error_of(&self, field: &str) -> Option<&str> {
        message_of(&self.silence_errors, field)
    }

    /// How many channels cannot be used: the page's banner.
    pub fn unusable_channels(&self) -> usize {
        self.channels.iter().filter(|c| c.problem.is_some()).count()
    }
}

/// The alert history page's data: newest first.
#[derive(Serialize)]
pub struct HistoryView {
    pub history: Vec<HistoryRow>,
}

page!(HistoryView, "alert_history.html", "alerts");

#[derive(Clone, Serialize)]
pub struct HistoryRow {
    pub at: Timestamp,
    pub status: String,
    pub rule: String,
    pub subject: String,
    pub summary: String,
    pub started_at: Timestamp,
    pub delivery: String,
}

impl From<AlertRecord> for HistoryRow {
    fn from(r: AlertRecord) -> HistoryRow {
        HistoryRow {
            at: r.at,
            status: r.status,
            rule: r.rule,
            subject: r.subject,
            summary: r.summary,
            started_at: r.started_at,
            delivery: r.delivery,
        }
    }
}

#[derive(Clone, Serialize)]
pub struct SilenceRow {
    pub id: i64,
    /// `None`: every rule.
    pub rule: Option<String>,
    /// `None`: every subject.
    pub subject: Option<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    /// Said once, to its maker: the silence names a subject that nothing has now (see
    /// [`unmatched_warning`]). It was made all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl From<StoredSilence> for SilenceRow {
    fn from(s: StoredSilence) -> SilenceRow {
        SilenceRow {
            id: s.id,
            rule: s.rule,
            subject: s.subject,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            created_by: s.created_by,
            comment: s.comment,
            warning: None,
        }
    }
}

/// A channel test's outcome.
#[derive(Clone, Serialize)]
pub struct Tested {
    pub channel: String,
    pub ok: bool,
    pub message: String,
    /// What the receiver answered when it took the message (`Delivery::answer`: the HTTP
    /// status and the start of the body, or the SMTP server's reply); `None` when it did not.
    pub answer: Option<String>,
}

async fn view(state: &AppState) -> Result<AlertsView, AppError> {
    let rules = state.alerting.rules();
    let silences = state
        .store()
        .alert_silences(Timestamp::now())
        .map_err(AppError::internal)?
        .into_iter()
        .map(SilenceRow::from)
        .collect();
    Ok(AlertsView {
        channels: state.alerting.channel_rows(),
        rules_form: alert_rules::form(&rules),
        rules_text: serde_json::to_string_pretty(&rules).expect("rules serialise"),
        rules_json_error: None,
        rules,
        rule_names: RuleId::ALL.iter().map(|r| r.as_str()).collect(),
        alerts: state.alerting.ongoing().await,
        silences,
        can_store_secrets: state.alerting.key().is_some(),
        no_key: state.alerting.key().is_none().then_some(NO_KEY),
        tested: None,
        channel_errors: Vec::new(),
        channel_form: ChannelForm::default(),
        silence_errors: Vec::new(),
        silence_form: None,
        silence_warning: None,
    })
}

/// What `GET /alerts` may be asked besides the page.
#[derive(Deserialize)]
pub struct AlertsQuery {
    /// A silence just made whose subject matched nothing: the page says so again, from the
    /// stored silence and the swarm now, so a reload never posts the silence twice.
    pub unmatched: Option<i64>,
    /// A channel test just sent: its outcome, kept for its sender ([`crate::outcomes`]).
    pub tested: Option<u64>,
}

/// `GET /alerts`, `GET /api/alerts`; `?unmatched=ID` after a silence that matched nothing,
/// `?tested=KEY` after a channel test.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AlertsQuery>,
) -> Result<Reply, AppError> {
    let mut page = view(&state).await?;
    if let Some(id) = query.unmatched {
        page.silence_warning = silence_warning(&state, id).await;
    }
    if let Some(key) = query.tested {
        page.tested = state.outcomes.get::<Tested>(caller.user.id, key);
    }
    Ok(Reply::page(page))
}

/// The warning for the running silence `id` when its subject matches nothing now; `None` for
/// one that matches, has ended or is unknown. The engine not answering costs the warning only.
async fn silence_warning(state: &AppState, id: i64) -> Option<String> {
    let stored = state
        .store()
        .alert_silences(Timestamp::now())
        .map_err(|e| tracing::warn!(error = %e, "could not read the alert silences"))
        .ok()?
        .into_iter()
        .find(|s| s.id == id)?;
    let silence = silence_of(&stored)?;
    unmatched_warning(state, &silence)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not check what a silence matches");
            None
        })
}

/// `GET /alerts/history`, `GET /api/alerts/history`: the newest messages, newest first.
pub async fn history(State(state): State<AppState>) -> Result<Reply, AppError> {
    let history = state
        .store()
        .alert_history(HISTORY_SHOWN)
        .map_err(AppError::internal)?
        .into_iter()
        .map(HistoryRow::from)
        .collect();
    Ok(Reply::page(HistoryView { history }))
}

/// A channel to add, as the form or the JSON API posts it: one flat shape for every kind;
/// the fields a kind does not use are ignored. Secrets are [`Secret`]s from the moment they
/// are read.
#[derive(Deserialize)]
pub struct NewChannel {
    pub name: String,
    /// `webhook`, `slack`, `discord`, `ntfy`, `email`, `alertmanager`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The webhook URL (webhook, Slack, Discord), the topic URL (ntfy) or the base URL
    /// (Alertmanager).
    #[serde(default, deserialize_with = "secret")]
    pub url: Secret,
    /// ntfy's access token, Alertmanager's bearer token; optional.
    #[serde(default, deserialize_with = "secret")]
    pub token: Secret,
    /// Email: the SMTP relay.
    #[serde(default)]
    pub host: String,
    /// Email: 587 unless given.
    #[serde(default)]
    pub port: PortField,
    /// Email: `starttls` (the default), `tls` or `none`.
    #[serde(default)]
    pub tls: String,
    #[serde(default)]
    pub username: String,
    #[serde(default, deserialize_with = "secret")]
    pub password: Secret,
    #[serde(default)]
    pub from: String,
    /// Email: addresses separated by commas.
    #[serde(default)]
    pub to: String,
    /// Email: a PEM certificate to trust besides the public roots.
    #[serde(default)]
    pub ca_pem: String,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

/// The email port as posted: a number, none, or why the text is not a port — said next to the
/// form's field (422) like the channel's other errors, not as a bare 400 before the form is
/// read (tryout9 finding 9) — and the text as given, for the form shown again.
#[derive(Debug)]
pub struct PortField {
    number: Result<Option<u16>, String>,
    text: String,
}

impl Default for PortField {
    fn default() -> Self {
        PortField {
            number: Ok(None),
            text: String::new(),
        }
    }
}

impl<'de> Deserialize<'de> for PortField {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Read whole first, so a refusal leaves the rest of the body readable.
        let value = serde_json::Value::deserialize(deserializer)?;
        let text = match &value {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        Ok(PortField {
            number: optional_number::<_, u16>(value).map_err(|e| e.to_string()),
            text,
        })
    }
}

/// The add-channel form as posted when it was refused, for showing it again with every field
/// as typed but the secrets: the token, the password, and the URL of every kind but
/// Alertmanager (a webhook's, Slack's, Discord's and an ntfy topic's URL carry or are the
/// token). A secret that was filled in comes back empty with "enter again", a secret URL with
/// its host beside it.
#[derive(Clone, Debug, Default)]
pub struct ChannelForm {
    pub name: String,
    /// `webhook`, `slack`, …; empty: the form's first.
    pub kind: String,
    /// Alertmanager's base URL, stored in the clear; empty for the other kinds, and for one
    /// that names a user (`http://user:password@…`).
    pub url: String,
    /// The host of a URL that is not shown again.
    pub url_host: Option<String>,
    pub host: String,
    pub port: String,
    pub tls: String,
    pub username: String,
    pub from: String,
    pub to: String,
    pub ca_pem: String,
    pub retype: Retype,
}

impl ChannelForm {
    /// What of `posted` may be shown again.
    pub fn of(posted: &NewChannel) -> ChannelForm {
        let url = posted.url.expose().trim();
        let shown_url = posted.kind == "alertmanager" && !url.contains('@');
        let secret_url = if shown_url { "" } else { url };
        ChannelForm {
            name: posted.name.clone(),
            kind: posted.kind.clone(),
            url: if shown_url {
                url.to_owned()
            } else {
                String::new()
            },
            url_host: url_host(secret_url),
            host: posted.host.clone(),
            port: posted.port.text.clone(),
            tls: posted.tls.clone(),
            username: posted.username.clone(),
            from: posted.from.clone(),
            to: posted.to.clone(),
            ca_pem: posted.ca_pem.clone(),
            retype: Retype::of(&[
                ("url", secret_url),
                ("token", posted.token.expose()),
                ("password", posted.password.expose()),
            ]),
        }
    }
}

impl NewChannel {
    /// The channel it describes, checked; `Err`: every field that is wrong, by the form's
    /// (and the JSON body's) name: the URL of every kind is `url`, whatever the channel calls
    /// it.
    pub fn channel(self) -> Result<Channel, Vec<FieldError>> {
        let mut errors = Vec::new();
        let some = |s: Secret| (!s.expose().trim().is_empty()).then_some(s);
        let text = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let url = Secret::new(self.url.expose().trim());
        let kind = match self.kind.as_str() {
            "webhook" => ChannelKind::Webhook { url },
            "slack" => ChannelKind::Slack { webhook_url: url },
            "discord" => ChannelKind::Discord { webhook_url: url },
            "ntfy" => ChannelKind::Ntfy {
                topic_url: url,
                token: some(self.token),
            },
            "alertmanager" => ChannelKind::Alertmanager {
                url: url.expose().to_string(),
                bearer_token: some(self.token),
            },
            "email" => ChannelKind::Email(EmailChannel {
                host: self.host.trim().to_string(),
                // A wrong port or TLS mode is said, and the rest checked as with the default.
                port: match self.port.number {
                    Ok(port) => port.unwrap_or(587),
                    Err(why) => {
                        errors.push(FieldError::new("port", why));
                        587
                    }
                },
                tls: match self.tls.as_str() {
                    "" | "starttls" => SmtpTls::Starttls,
                    "tls" => SmtpTls::Tls,
                    "none" => SmtpTls::None,
                    other => {
                        errors.push(FieldError::new(
                            "tls",
                            format!("{other:?} is not starttls, tls or none"),
                        ));
                        SmtpTls::Starttls
                    }
                },
                username: text(self.username),
                password: some(self.password),
                from: self.from.trim().to_string(),
                to: self
                    .to
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                ca_pem: text(self.ca_pem),
            }),
            other => {
                return Err(vec![FieldError::new(
                    "type",
                    format!(
                        "{other:?} is not webhook, slack, discord, ntfy, email or alertmanager"
                    ),
                )])
            }
        };
        let channel = Channel {
            name: self.name.trim().to_string(),
            kind,
        };
        for problem in channel.problems() {
            let field = match problem.field {
                "webhook_url" | "topic_url" => "url",
                field => field,
            };
            if errors.iter().all(|e: &FieldError| e.field != field) {
                errors.push(FieldError::new(field, problem.reason));
            }
        }
        if errors.is_empty() {
            Ok(channel)
        } else {
            errors.sort_by_key(|e| CHANNEL_FIELDS.iter().position(|f| *f == e.field));
            Err(errors)
        }
    }
}

/// Seals `channel`'s settings for the store.
pub fn seal(channel: &Channel, key: &SealingKey, by: &str, now: Timestamp) -> StoredChannel {
    StoredChannel {
        id: 0,
        name: channel.name.clone(),
        kind: channel.kind.kind_name().to_string(),
        describe: channel.describe(),
        sealed: key.seal(
            &channel_purpose(&channel.name),
            &serde_json::to_vec(channel).expect("channels serialise"),
        ),
        created_at: now,
        created_by: by.to_string(),
    }
}

/// `POST /alerts/channels`, `POST /api/alerts/channels` (201 with the row, never a secret).
pub async fn add_channel(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(new): Input<NewChannel>,
) -> Result<Reply, AppError> {
    let form = ChannelForm::of(&new);
    let channel = match new.channel() {
        Ok(channel) => channel,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return refused_fields(uri.path(), &errors.clone(), status, async {
                let mut page = view(&state).await?;
                page.channel_errors = errors;
                page.channel_form = form;
                Ok(page)
            })
            .await;
        }
    };
    let Some(key) = state.alerting.key() else {
        return Err(AppError::Conflict(NO_KEY.to_string()));
    };
    if state
        .alerting
        .channel_rows()
        .iter()
        .any(|c| c.name == channel.name)
    {
        let error = FieldError::new(
            "name",
            format!(
                "{} is taken here: remove the alert channel of that name first to change it",
                channel.name
            ),
        );
        if Format::of(uri.path()) == Format::Json {
            return Err(AppError::Conflict(error.to_string()));
        }
        // The form is shown again with the name to change, as its other errors are.
        let mut page = view(&state).await?;
        page.channel_errors = vec![error];
        page.channel_form = form;
        return Ok(Reply::page(page).with_status(StatusCode::UNPROCESSABLE_ENTITY));
    }
    let stored = seal(&channel, key, &caller.user.name, Timestamp::now());
    let id = sealed::add::<sealed::AlertChannel>(&state, &caller, &stored)?;
    let row = state
        .alerting
        .channel_rows()
        .into_iter()
        .find(|r| r.id == Some(id))
        .ok_or_else(|| AppError::internal("the channel just added is not listed"))?;
    Ok(Reply::changed(StatusCode::CREATED, row, "/alerts"))
}

/// `POST /alerts/channels/{id}/remove`, `DELETE /api/alerts/channels/{id}`.
pub async fn remove_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Reply, AppError> {
    sealed::remove::<sealed::AlertChannel>(&state, &caller, id)?;
    Ok(Reply::done("/alerts"))
}

/// `POST /alerts/channels/{id}/test`, `POST /api/alerts/channels/{id}/test`: sends the test
/// message. 200 `{"ok": true, "answer": "HTTP 200 OK: ok"}` with what the receiver answered;
/// a receiver that refused or could not be reached 502 with what it said (the channel named by
/// its host only).
pub async fn test_channel(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Path(id): Path<i64>,
) -> Result<Reply, AppError> {
    let Some(channel) = state.alerting.channel(id) else {
        let row = state
            .alerting
            .channel_rows()
            .into_iter()
            .find(|r| r.id == Some(id));
        return Err(match row.and_then(|r| r.problem.map(|p| (r.name, p))) {
            Some((name, problem)) => AppError::Conflict(format!("{name}: {problem}")),
            None => AppError::NotFound(format!("no alert channel with id {id}")),
        });
    };
    let outcome = state.alerting.send_test(&channel).await;
    state.audit(
        &caller.user.name,
        Action::ManageSettings.as_str(),
        &format!("alert channel {}", channel.name),
        if outcome.is_ok() {
            "tested: delivered"
        } else {
            "tested: failed"
        },
    )?;
    let tested = Tested {
        channel: channel.name.clone(),
        ok: outcome.is_ok(),
        message: match &outcome {
            Ok(delivery) => format!(
                "the test message was delivered; the receiver answered {}",
                delivery.answer
            ),
            Err(e) => e.to_string(),
        },
        answer: outcome.as_ref().ok().map(|d| d.answer.clone()),
    };
    let status = if tested.ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    // The form goes on to the page, which shows the outcome (a reload sends no second test).
    let then = state.outcomes.redirect(
        uri.path(),
        caller.user.id,
        tested.clone(),
        "/alerts",
        "tested",
    );
    Ok(Reply::changed(status, tested, then))
}

/// `POST /alerts/rules`: the rules form (a field per figure, named by its dotted JSON path:
/// `node_down.for`; a switch not posted is off), or the rules as JSON text in the field `rules`
/// ("edit as JSON"). Nothing is applied unless all of it reads: the page comes back (422) with
/// each error next to its field, or the JSON's line and column.
pub async fn set_rules_form(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(posted): Input<BTreeMap<String, String>>,
) -> Result<Reply, AppError> {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    if let Some(text) = posted.get("rules") {
        return match AlertRules::from_json(text) {
            Ok(rules) => set_rules(&state, &caller, rules),
            Err(e) => {
                refused(uri.path(), format!("rules: {e}"), status, async {
                    let mut page = view(&state).await?;
                    page.rules_text = text.clone();
                    page.rules_json_error = Some(e.to_string());
                    Ok(page)
                })
                .await
            }
        };
    }
    match alert_rules::read(&posted) {
        Ok(rules) => set_rules(&state, &caller, rules),
        Err(form) => {
            let first = form
                .groups
                .iter()
                .flat_map(|g| &g.fields)
                .find_map(|f| Some(format!("{}: {}", f.name, f.error.as_ref()?)))
                .unwrap_or_default();
            refused(uri.path(), first, status, async {
                let mut page = view(&state).await?;
                page.rules_form = form;
                Ok(page)
            })
            .await
        }
    }
}

/// `PUT /api/alerts/rules`: the rules as a JSON object (a missing field keeps its default);
/// answers the rules now in force.
pub async fn put_rules(
    State(state): State<AppState>,
    caller: Caller,
    Input(rules): Input<AlertRules>,
) -> Result<Reply, AppError> {
    rules
        .validate()
        .map_err(|e| AppError::BadInput(e.to_string()))?;
    set_rules(&state, &caller, rules)
}

/// `GET /api/alerts/rules`.
pub async fn rules(State(state): State<AppState>) -> Result<Reply, AppError> {
    Ok(Reply::changed(
        StatusCode::OK,
        state.alerting.rules(),
        "/alerts",
    ))
}

fn set_rules(state: &AppState, caller: &Caller, rules: AlertRules) -> Result<Reply, AppError> {
    state
        .alerting
        .set_rules(&state.store(), rules.clone())
        .map_err(AppError::BadInput)?;
    state.audit(
        &caller.user.name,
        Action::ManageSettings.as_str(),
        "alert rules",
        "changed",
    )?;
    Ok(Reply::changed(StatusCode::OK, rules, "/alerts"))
}

/// A silence to add: the rule and subject it matches (empty: any, but not both), how long it
/// lasts from now (`2h`) or when it ends, and why. A refused form comes back with it as typed.
#[derive(Clone, Deserialize)]
pub struct NewSilence {
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub subject: String,
    /// How long from now (`90m`, `2h`, `1h30m`).
    #[serde(default)]
    pub duration: String,
    /// RFC 3339; instead of `duration`.
    #[serde(default)]
    pub ends_at: String,
    #[serde(default)]
    pub comment: String,
}

/// `POST /alerts/silences`, `POST /api/alerts/silences` (201 with the silence). A refusal
/// names the field: on the page, next to it (422), in JSON as a 400.
pub async fn add_silence(
    State(state): State<AppState>,
    caller: Caller,
    uri: Uri,
    Input(new): Input<NewSilence>,
) -> Result<Reply, AppError> {
    let now = Timestamp::now();
    let silence = match read_silence(&new, &caller.user.name, now) {
        Ok(silence) => silence,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return refused_fields(uri.path(), &errors.clone(), status, async {
                let mut page = view(&state).await?;
                page.silence_errors = errors;
                page.silence_form = Some(new.clone());
                Ok(page)
            })
            .await;
        }
    };
    let (rule, subject, ends_at) = (silence.rule, silence.subject.clone(), silence.ends_at);
    let mut stored = StoredSilence {
        id: 0,
        rule: rule.map(|r| r.as_str().to_string()),
        subject,
        starts_at: now,
        ends_at,
        created_by: caller.user.name.clone(),
        comment: silence.comment.clone(),
    };
    stored.id = state
        .store()
        .add_alert_silence(&stored)
        .map_err(AppError::internal)?;
    state.audit(
        &caller.user.name,
        Action::ManageSettings.as_str(),
        "alert silence",
        &format!(
            "silenced rule {} subject {} until {}",
            stored.rule.as_deref().unwrap_or("(any)"),
            stored.subject.as_deref().unwrap_or("(any)"),
            crate::page::when(ends_at)
        ),
    )?;
    state.alerting.evaluate_soon();
    // The silence is made: an engine that cannot be asked now only costs the warning.
    let warning = unmatched_warning(&state, &silence)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not check what a new silence matches");
            None
        });
    let row = SilenceRow {
        warning: warning.clone(),
        ..SilenceRow::from(stored)
    };
    // The form goes back to the page, which says the warning again next to the subject.
    let then = match warning {
        Some(_) => format!("/alerts?unmatched={}", row.id),
        None => "/alerts".to_owned(),
    };
    Ok(Reply::changed(StatusCode::CREATED, row, then))
}

/// What to tell the maker of `silence` when its subject matches nothing now: no node
/// (hostname), service (name) or task slot (`service.1`, `service.HOSTNAME` for a global
/// service) of the swarm, and no ongoing alert (`Silence::matches_something`). `None` for a
/// silence of a rule alone, or one that matches something.
async fn unmatched_warning(
    state: &AppState,
    silence: &Silence,
) -> Result<Option<String>, EngineError> {
    let Some(subject) = &silence.subject else {
        return Ok(None);
    };
    let (nodes, services, tasks) = tokio::try_join!(
        state.engine.list_nodes(),
        state.engine.list_services(None),
        state.engine.list_all_tasks()
    )?;
    let hostnames: BTreeMap<&str, &str> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.hostname.as_str()))
        .collect();
    let names: BTreeMap<&str, &str> = services
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();
    let mut known: Vec<String> = hostnames
        .values()
        .chain(names.values())
        .map(|n| n.to_string())
        .collect();
    known.extend(tasks.iter().filter(|t| t.is_wanted()).filter_map(|t| {
        let service = names.get(t.service_id.as_str())?;
        Some(match t.slot {
            Some(slot) => format!("{service}.{slot}"),
            None => format!("{service}.{}", hostnames.get(t.node_id.as_str())?),
        })
    }));
    // The alert-channel-unusable rule names a channel.
    known.extend(
        state
            .alerting
            .channel_rows()
            .into_iter()
            .map(|row| row.name),
    );
    let ongoing = state.alerting.ongoing().await;
    let ongoing: Vec<(RuleId, &str)> = ongoing
        .iter()
        .map(|a| (a.rule, a.subject.as_str()))
        .collect();
    Ok((!silence.matches_something(&ongoing, &known)).then(|| {
        format!(
            "subject {subject:?} matches no node, service or task slot now, nor an ongoing \
             alert: the silence mutes nothing until one of that name appears. A node is named \
             by its hostname, a service by its name, a task slot as service.1."
        )
    }))
}

/// The silence a form or body describes, from `now`, or the field that is wrong.
fn read_silence(new: &NewSilence, by: &str, now: Timestamp) -> Result<Silence, Vec<FieldError>> {
    let mut errors = Vec::new();
    let rule = match new.rule.trim() {
        "" => None,
        text => match text.parse::<RuleId>() {
            Ok(rule) => Some(rule),
            Err(e) => {
                errors.push(FieldError::new("rule", e.to_string()));
                None
            }
        },
    };
    let subject = Some(new.subject.trim().to_string()).filter(|s| !s.is_empty());
    if new.rule.trim().is_empty() && subject.is_none() {
        errors.push(FieldError::new(
            "subject",
            SilenceError::MatchesEverything.to_string(),
        ));
    }
    let too_long = || FieldError::new("duration", "too long".into());
    let ends_at = match (new.duration.trim(), new.ends_at.trim()) {
        ("", "") => Err(FieldError::new(
            "duration",
            "give how long the silence lasts (e.g. 2h), or ends_at".into(),
        )),
        (duration, "") => swarmkeeper_units::parse_duration(duration)
            .map_err(|e| FieldError::new("duration", e.to_string()))
            .and_then(|d| jiff::SignedDuration::try_from(d).map_err(|_| too_long()))
            .and_then(|d| now.checked_add(d).map_err(|_| too_long())),
        (_, ends_at) => ends_at
            .parse::<Timestamp>()
            .map_err(|e| FieldError::new("ends_at", e.to_string())),
    };
    let ends_at = match ends_at {
        Ok(ends_at) if errors.is_empty() => ends_at,
        Ok(_) => return Err(errors),
        Err(error) => {
            errors.push(error);
            return Err(errors);
        }
    };
    let silence = Silence {
        rule,
        subject,
        starts_at: now,
        ends_at,
        created_by: by.to_owned(),
        comment: new.comment.trim().to_string(),
    };
    silence.validate().map_err(|e| {
        let field = match e {
            SilenceError::MatchesEverything => "subject",
            SilenceError::EndsBeforeStart { .. } if new.duration.trim().is_empty() => "ends_at",
            SilenceError::EndsBeforeStart { .. } => "duration",
        };
        vec![FieldError::new(field, e.to_string())]
    })?;
    Ok(silence)
}

/// `POST /alerts/silences/{id}/expire`, `DELETE /api/alerts/silences/{id}`: ends it now.
pub async fn expire_silence(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Reply, AppError> {
    let expired = state
        .store()
        .expire_alert_silence(id, Timestamp::now())
        .map_err(AppError::internal)?;
    if !expired {
        return Err(AppError::NotFound(format!(
            "no running alert silence with id {id}"
        )));
    }
    state.audit(
        &caller.user.name,
        Action::ManageSettings.as_str(),
        "alert silence",
        &format!("expired silence {id}"),
    )?;
    state.alerting.evaluate_soon();
    Ok(Reply::done("/alerts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(rule: &str, subject: &str, duration: &str) -> NewSilence {
        NewSilence {
            rule: rule.into(),
            subject: subject.into(),
            duration: duration.into(),
            ends_at: String::new(),
            comment: String::new(),
        }
    }

    fn fields(new: &NewSilence) -> Vec<&'static str> {
        match read_silence(new, "admin", Timestamp::UNIX_EPOCH) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(|e| e.field).collect(),
        }
    }

    #[test]
    fn every_wrong_field_of_a_silence_is_named_in_one_answer() {
        assert_eq!(
            fields(&form("no_such_rule", "", "5 parsecs")),
            ["rule", "duration"]
        );
        assert_eq!(fields(&form("", "", "")), ["subject", "duration"]);
        assert_eq!(fields(&form("", " ", "-1h")), ["subject", "duration"]);
        assert_eq!(fields(&form("node-down", "", "2h")), Vec::<&str>::new());
        assert_eq!(
            fields(&form("", "web", "0s")),
            ["duration"],
            "ends as it starts"
        );
    }
}
