//! How a revision is written into Swarm config objects and read back. Pure: names, labels,
//! chunks and the compressed record, with no engine call.
//!
//! A revision is two records, each one config object (or several, past one object's size):
//!
//! - the **start**, created when the deploy starts: labelled with the stack, the number, who,
//!   the kind and when; its data the files deployed (path, SHA-256, text). Creating it claims
//!   the number: config names are unique, so two writers cannot both create revision N.
//! - the **end**, created when the deploy ends: labelled with the stack, the number, the
//!   outcome and when; its data each service's spec before and after and how it ended. A
//!   revision without an end is running, or was interrupted (see [`records`]).
//! - rarely, the **settlement** ([`crate::history::Settlement`]), created after the fact by
//!   whoever learnt how the revision really ended (a re-key cut off by the server's own
//!   restart): labelled with the stack, the number, the outcome and when; its data the note,
//!   as plain UTF-8. Readers take its outcome over the end's, which stays as it was written.
//!
//! Data is gzip-compressed JSON (`docker config inspect` shows it as base64: `base64 -d |
//! gunzip` reads it). No object carries `com.docker.stack.namespace`, so `docker stack rm`
//! leaves the history in place.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use swarmkeeper_engine::ConfigObject;
use swarmkeeper_rollout::revisions::{still_running, LockSeen};
use swarmkeeper_store::{
    split_by_sentence, DeployKind, DeployOutcome, DeployRecord, FileDigest, LockHolder, ObjectKind,
    ObjectRevision, ServiceRevision,
};

use crate::history::{settled_summary, RevisionEnd, RevisionStart, Settlement};
use crate::{base64, sha256_hex, DeployError};

/// Every revision object carries these; their names all start with `swarmkeeper.revision`.
pub const LABEL_STACK: &str = "swarmkeeper.revision.stack";
pub const LABEL_NUMBER: &str = "swarmkeeper.revision.number";
/// `start`, `end` or `settled`.
pub const LABEL_RECORD: &str = "swarmkeeper.revision.record";
/// `I/N`: this object holds the I-th of N pieces of its record's data.
pub const LABEL_CHUNK: &str = "swarmkeeper.revision.chunk";
/// On the start: who deployed, `deploy` or `rollback`, when it started (RFC 3339).
pub const LABEL_BY: &str = "swarmkeeper.revision.by";
/// On the start: what who did, when it is more than a deploy or rollback of files (`edited
/// in the dashboard`); empty when it is not. A start without it was written before who and
/// what were kept apart: its `by` may be a sentence holding both ("edited in the dashboard
/// by alice"), split when it is read ([`split_by_sentence`]).
pub const LABEL_ACTION: &str = "swarmkeeper.revision.action";
pub const LABEL_KIND: &str = "swarmkeeper.revision.kind";
pub const LABEL_STARTED: &str = "swarmkeeper.revision.started";
/// On the end: how the revision ended, and when (RFC 3339).
pub const LABEL_OUTCOME: &str = "swarmkeeper.revision.outcome";
pub const LABEL_FINISHED: &str = "swarmkeeper.revision.finished";

/// The deploy lock of a stack: the stack, who holds it, and a counter its holder raises to
/// renew it (the manager's `UpdatedAt` then says when it was last renewed).
pub const LABEL_LOCK_STACK: &str = "swarmkeeper.lock.stack";
pub const LABEL_LOCK_HOLDER: &str = "swarmkeeper.lock.holder";
pub const LABEL_LOCK_BEAT: &str = "swarmkeeper.lock.beat";

/// Data per object. Swarm refuses a config past 500 KiB on older engines (1000 KiB from
/// Docker 20.10 on: "config data must be larger than 0 and less than 1024000 bytes"), so a
/// record is cut at the smaller limit and works with both.
pub const CHUNK_BYTES: usize = 500 * 1024;

/// At most this many objects per record: 32 MiB compressed, far beyond any stack seen, and
/// well within what the managers keep in memory.
pub const MAX_CHUNKS: usize = 64;

/// The most a record may unpack to; more is a damaged or hostile object, not a revision.
const MAX_UNPACKED: u64 = 512 * 1024 * 1024;

/// Swarm's limit on an object's name (`[a-zA-Z0-9-_.]`, 64 at most).
const MAX_NAME: usize = 64;

/// The version of the data layout; a reader refuses a newer one by name.
const FORMAT: u32 = 1;

/// Which record of a revision an object belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Start,
    End,
    Settled,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Start => "start",
            Part::End => "end",
            Part::Settled => "settled",
        }
    }
}

/// A config object to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewObject {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub data: Vec<u8>,
}

impl NewObject {
    /// The spec `POST /configs/create` takes.
    pub fn spec(&self) -> Value {
        serde_json::json!({
            "Name": self.name,
            "Labels": self.labels,
            "Data": base64(&self.data),
        })
    }
}

/// `swarmkeeper-rev-STACK-N`, `…-N.2` for the second chunk, `…-N-end` for the end,
/// `…-N-settled` for the settlement. A stack whose name would not fit is named by a digest
/// of it (the labels keep the real name).
pub fn object_name(stack: &str, number: u64, part: Part, chunk: usize) -> String {
    let mut suffix = format!("-{number}");
    match part {
        Part::Start => {}
        Part::End => suffix.push_str("-end"),
        Part::Settled => suffix.push_str("-settled"),
    }
    if chunk > 1 {
        suffix.push_str(&format!(".{chunk}"));
    }
    fitted("swarmkeeper-rev-", stack, &suffix)
}

/// `swarmkeeper-lock-STACK`: created once, so whoever creates it holds the stack.
pub fn lock_name(stack: &str) -> String {
    fitted("swarmkeeper-lock-", stack, "")
}

fn fitted(prefix: &str, stack: &str, suffix: &str) -> String {
    let name = format!("{prefix}{stack}{suffix}");
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.len() <= MAX_NAME && stack.chars().all(allowed) {
        name
    } else {
        format!("{prefix}{}{suffix}", &sha256_hex(stack.as_bytes())[..16])
    }
}

/// The label filters that pick a stack's objects, or one revision's.
pub fn stack_filter(stack: &str, number: Option<u64>) -> Vec<String> {
    let mut filters = vec![format!("{LABEL_STACK}={stack}")];
    if let Some(number) = number {
        filters.push(format!("{LABEL_NUMBER}={number}"));
    }
    filters
}

/// The label filters that pick a stack's start records (one per revision).
pub fn starts_filter(stack: &str) -> Vec<String> {
    vec![
        format!("{LABEL_STACK}={stack}"),
        format!("{LABEL_RECORD}={}", Part::Start.as_str()),
    ]
}

#[derive(Serialize, Deserialize)]
struct StartData {
    format: u32,
    files: Vec<FileDigest>,
}

#[derive(Serialize, Deserialize)]
struct EndData {
    format: u32,
    #[serde(default)]
    summary: String,
    services: Vec<ServiceData>,
    /// Absent in revisions written before objects were recorded: they read as none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    objects: Vec<ObjectData>,
}

/// A network, secret or config of the end record, its create body embedded as JSON.
#[derive(Serialize, Deserialize)]
struct ObjectData {
    kind: ObjectKind,
    id: String,
    name: String,
    spec: Box<RawValue>,
}

/// A service of the end record. Specs are embedded as JSON (not strings), so that the
/// unpacked record reads well; a spec the revision left as it was is written once.
#[derive(Serialize, Deserialize)]
struct ServiceData {
    service: String,
    outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<Box<RawValue>>,
    /// `before` is `after`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    unchanged: bool,
}

/// The start record's objects, the first one (which claims the number) first.
pub fn start_objects(
    number: u64,
    start: &RevisionStart<'_>,
) -> Result<Vec<NewObject>, DeployError> {
    let data = StartData {
        format: FORMAT,
        files: start.files.to_vec(),
    };
    let mut labels = BTreeMap::from([
        (LABEL_BY.to_owned(), start.by.to_owned()),
        (
            LABEL_ACTION.to_owned(),
            start.action.unwrap_or_default().to_owned(),
        ),
        (LABEL_KIND.to_owned(), start.kind.as_str().to_owned()),
        (LABEL_STARTED.to_owned(), start.at.to_string()),
    ]);
    labels.extend(common_labels(start.stack, number, Part::Start));
    cut(start.stack, number, Part::Start, &data, labels)
}

/// The end record's objects, the first one last: readers take a record whose first object
/// exists as complete.
pub fn end_objects(
    stack: &str,
    number: u64,
    end: &RevisionEnd<'_>,
) -> Result<Vec<NewObject>, DeployError> {
    let services = end
        .services
        .iter()
        .map(|s| {
            let spec = |text: &Option<String>| {
                text.as_ref()
                    .map(|t| RawValue::from_string(t.clone()))
                    .transpose()
                    .map_err(|e| {
                        DeployError::Input(format!(
                            "revision {number} of {stack}: the spec of {} is not JSON: {e}",
                            s.service
                        ))
                    })
            };
            let unchanged = s.before.is_some() && s.before == s.after;
            Ok(ServiceData {
                service: s.service.clone(),
                outcome: s.outcome.clone(),
                before: if unchanged { None } else { spec(&s.before)? },
                after: spec(&s.after)?,
                unchanged,
            })
        })
        .collect::<Result<Vec<_>, DeployError>>()?;
    let objects = end
        .objects
        .iter()
        .map(|o| {
            let spec = RawValue::from_string(o.spec.clone()).map_err(|e| {
                DeployError::Input(format!(
                    "revision {number} of {stack}: the spec of {} {} is not JSON: {e}",
                    o.kind, o.name
                ))
            })?;
            Ok(ObjectData {
                kind: o.kind.clone(),
                id: o.id.clone(),
                name: o.name.clone(),
                spec,
            })
        })
        .collect::<Result<Vec<_>, DeployError>>()?;
    let data = EndData {
        format: FORMAT,
        summary: end.summary.to_owned(),
        services,
        objects,
    };
    let mut labels = BTreeMap::from([
        (LABEL_OUTCOME.to_owned(), end.outcome.as_str().to_owned()),
        (LABEL_FINISHED.to_owned(), end.at.to_string()),
    ]);
    labels.extend(common_labels(stack, number, Part::End));
    let mut objects = cut(stack, number, Part::End, &data, labels)?;
    objects.rotate_left(1);
    Ok(objects)
}

/// The settlement's one object: its note is short (a line), so it is never cut.
pub fn settled_object(stack: &str, number: u64, settlement: &Settlement<'_>) -> NewObject {
    let mut labels = BTreeMap::from([
        (
            LABEL_OUTCOME.to_owned(),
            settlement.outcome.as_str().to_owned(),
        ),
        (LABEL_FINISHED.to_owned(), settlement.at.to_string()),
    ]);
    labels.extend(common_labels(stack, number, Part::Settled));
    // Swarm refuses an empty config.
    let note = match settlement.note.trim() {
        "" => settlement.outcome.as_str(),
        note => note,
    };
    NewObject {
        name: object_name(stack, number, Part::Settled, 1),
        labels,
        data: note.as_bytes().to_vec(),
    }
}

fn common_labels(stack: &str, number: u64, part: Part) -> [(String, String); 3] {
    [
        (LABEL_STACK.to_owned(), stack.to_owned()),
        (LABEL_NUMBER.to_owned(), number.to_string()),
        (LABEL_RECORD.to_owned(), part.as_str().to_owned()),
    ]
}

/// Compresses a record and cuts it into objects; the first carries every label, the others
/// those that find them (stack, number, record) and their chunk.
fn cut<T: Serialize>(
    stack: &str,
    number: u64,
    part: Part,
    data: &T,
    labels: BTreeMap<String, String>,
) -> Result<Vec<NewObject>, DeployError> {
    let packed = pack(data);
    let chunks: Vec<&[u8]> = packed.chunks(CHUNK_BYTES).collect();
    if chunks.len() > MAX_CHUNKS {
        return Err(DeployError::Input(format!(
            "the {} record of revision {number} of {stack} is {} MiB compressed; the swarm keeps \
             at most {} MiB per record ({MAX_CHUNKS} configs of {} KiB)",
            part.as_str(),
            packed.len() / (1024 * 1024),
            MAX_CHUNKS * CHUNK_BYTES / (1024 * 1024),
            CHUNK_BYTES / 1024
        )));
    }
    let total = chunks.len();
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut labels = if i == 0 {
                labels.clone()
            } else {
                common_labels(stack, number, part).into_iter().collect()
            };
            labels.insert(LABEL_CHUNK.to_owned(), format!("{}/{total}", i + 1));
            NewObject {
                name: object_name(stack, number, part, i + 1),
                labels,
                data: chunk.to_vec(),
            }
        })
        .collect())
}

fn pack<T: Serialize>(data: &T) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    serde_json::to_writer(&mut encoder, data).expect("a record serialises into memory");
    encoder
        .finish()
        .expect("compressing into memory cannot fail")
}

fn unpack<T: for<'de> Deserialize<'de>>(packed: &[u8]) -> Result<T, String> {
    #[derive(Deserialize)]
    struct Format {
        format: u32,
    }
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(packed)
        .take(MAX_UNPACKED)
        .read_to_end(&mut text)
        .map_err(|e| format!("its data cannot be unpacked: {e}"))?;
    let format: Format = serde_json::from_slice(&text).map_err(|e| format!("not JSON: {e}"))?;
    if format.format > FORMAT {
        return Err(format!(
            "written by a newer swarmkeeper (format {})",
            format.format
        ));
    }
    serde_json::from_slice(&text).map_err(|e| format!("cannot be read: {e}"))
}

/// The objects of one record, by chunk, as the engine listed them.
#[derive(Default)]
struct Pieces<'a> {
    chunks: BTreeMap<usize, &'a ConfigObject>,
    total: usize,
}

impl<'a> Pieces<'a> {
    fn add(&mut self, object: &'a ConfigObject) {
        let (i, n) = object
            .labels
            .get(LABEL_CHUNK)
            .and_then(|c| c.split_once('/'))
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
            .unwrap_or((1, 1));
        if i == 1 {
            self.total = n;
        }
        self.chunks.insert(i, object);
    }

    /// The first object, once every chunk is there.
    fn first(&self) -> Option<&'a ConfigObject> {
        let complete = self.total > 0 && (1..=self.total).all(|i| self.chunks.contains_key(&i));
        complete.then(|| self.chunks[&1])
    }

    fn data(&self) -> Vec<u8> {
        self.chunks
            .values()
            .flat_map(|o| o.data.iter().copied())
            .collect()
    }
}

#[derive(Default)]
struct Revision<'a> {
    start: Pieces<'a>,
    end: Pieces<'a>,
    settled: Option<&'a ConfigObject>,
}

fn revisions_of(objects: &[ConfigObject]) -> BTreeMap<u64, Revision<'_>> {
    let mut revisions: BTreeMap<u64, Revision<'_>> = BTreeMap::new();
    for object in objects {
        let Some(number) = object.labels.get(LABEL_NUMBER).and_then(|n| n.parse().ok()) else {
            continue;
        };
        let revision = revisions.entry(number).or_default();
        match object.labels.get(LABEL_RECORD).map(String::as_str) {
            Some("start") => revision.start.add(object),
            Some("end") => revision.end.add(object),
            Some("settled") => revision.settled = Some(object),
            _ => {}
        }
    }
    revisions
}

/// The objects of each stack's newest revision among `objects` (revision objects of any
/// stacks), by stack; objects without the stack or number label are left out.
pub fn newest_by_stack(objects: &[ConfigObject]) -> BTreeMap<String, Vec<&ConfigObject>> {
    let mut newest: BTreeMap<&str, u64> = BTreeMap::new();
    for object in objects {
        let (Some(stack), Some(number)) = (
            object.labels.get(LABEL_STACK),
            object
                .labels
                .get(LABEL_NUMBER)
                .and_then(|n| n.parse::<u64>().ok()),
        ) else {
            continue;
        };
        let top = newest.entry(stack).or_insert(number);
        *top = (*top).max(number);
    }
    let mut out: BTreeMap<String, Vec<&ConfigObject>> = BTreeMap::new();
    for object in objects {
        let stack = object.labels.get(LABEL_STACK).map(String::as_str);
        let number = object
            .labels
            .get(LABEL_NUMBER)
            .and_then(|n| n.parse::<u64>().ok());
        if let (Some(stack), Some(number)) = (stack, number) {
            if newest.get(stack) == Some(&number) {
                out.entry(stack.to_owned()).or_default().push(object);
            }
        }
    }
    out
}

/// A revision that ended rolled back, read from its end record alone: what the server's
/// rolled-back alert names (the deploy engine's own rollback ends an update `completed`, so
/// Swarm's `UpdateStatus` does not tell it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolledBackRevision {
    pub stack: String,
    pub revision: u64,
    /// When its end was written, by the managers' clock (the end object's `CreatedAt`): a
    /// service update Swarm started after it is a later update.
    pub ended_at: Timestamp,
    /// Why it was rolled back: the revision's summary (`service: why; …`).
    pub reason: String,
    /// The services put back (their outcome `rolled back`).
    pub services: Vec<String>,
}

/// The filter that lists the first object of every end record that says `rolled back`.
pub fn rolled_back_filter() -> Vec<String> {
    vec![format!(
        "{LABEL_OUTCOME}={}",
        DeployOutcome::RolledBack.as_str()
    )]
}

/// The rolled-back revisions among `objects` (end objects of any stacks; a record whose
/// chunks are not all there, or that cannot be read, is left out), by stack then number.
pub fn rolled_back_ends(objects: &[ConfigObject]) -> Vec<RolledBackRevision> {
    let mut by_stack: BTreeMap<&str, Vec<ConfigObject>> = BTreeMap::new();
    for object in objects {
        if let Some(stack) = object.labels.get(LABEL_STACK) {
            by_stack.entry(stack).or_default().push(object.clone());
        }
    }
    let mut out = Vec::new();
    for (stack, objects) in &by_stack {
        for (number, revision) in revisions_of(objects) {
            let Some(first) = revision.end.first() else {
                continue;
            };
            if first.labels.get(LABEL_OUTCOME).map(String::as_str)
                != Some(DeployOutcome::RolledBack.as_str())
            {
                continue;
            }
            let Ok(data) = unpack::<EndData>(&revision.end.data()) else {
                continue;
            };
            out.push(RolledBackRevision {
                stack: (*stack).to_owned(),
                revision: number,
                ended_at: first.created_at,
                reason: data.summary,
                services: data
                    .services
                    .into_iter()
                    .filter(|s| s.outcome == "rolled back")
                    .map(|s| s.service)
                    .collect(),
            });
        }
    }
    out
}

/// Whether `object` is the first of a record cut into more than one (chunk `1/N`, N > 1).
pub fn more_chunks(object: &ConfigObject) -> bool {
    object
        .labels
        .get(LABEL_CHUNK)
        .and_then(|c| c.split_once('/'))
        .is_some_and(|(i, n)| i == "1" && n.parse::<usize>().is_ok_and(|n| n > 1))
}

/// The numbers of the revisions among `objects`, in order.
pub fn numbers(objects: &[ConfigObject]) -> Vec<u64> {
    revisions_of(objects).into_keys().collect()
}

/// Whether some revision among `objects` has a start and no end yet: only then does reading
/// the history need the stack's lock.
pub fn has_unfinished(objects: &[ConfigObject]) -> bool {
    revisions_of(objects)
        .values()
        .any(|r| r.start.first().is_some() && r.end.first().is_none() && r.settled.is_none())
}

/// What the summary of an interrupted revision says.
pub const INTERRUPTED: &str = "interrupted: the process deploying it stopped before it \
     finished; the stack may be half-applied (roll back, or deploy again)";

/// Reads a stack's objects back into its revisions, newest first. A revision whose start is
/// incomplete (being written, or being forgotten) is left out; one without an end runs while
/// `lock` (the stack's lock, if any, as seen at `now`; locks expire after `expiry`) says so, and was interrupted otherwise.
/// A settled revision reads as its settlement says, the end's words kept in its summary.
/// A record that cannot be read is shown with why, never dropped silently.
pub fn records(
    stack: &str,
    objects: &[ConfigObject],
    lock: Option<LockSeen>,
    now: Timestamp,
    expiry: Duration,
) -> Vec<DeployRecord> {
    let mut out: Vec<DeployRecord> = revisions_of(objects)
        .into_iter()
        .filter_map(|(number, revision)| {
            let first = revision.start.first()?;
            let label = |key: &str| first.labels.get(key).cloned().unwrap_or_default();
            let started_at = label(LABEL_STARTED).parse().unwrap_or(first.created_at);
            let mut problems = Vec::new();
            let files = match unpack::<StartData>(&revision.start.data()) {
                Ok(start) => start.files,
                Err(e) => {
                    problems.push(format!("the start record {e}"));
                    Vec::new()
                }
            };
            let (by, action) = match first.labels.get(LABEL_ACTION) {
                Some(action) => (label(LABEL_BY), Some(action.clone())),
                None => split_by_sentence(&label(LABEL_BY)),
            };
            let mut record = DeployRecord {
                stack: stack.to_owned(),
                revision: number,
                started_at,
                finished_at: None,
                by,
                action: action.filter(|a| !a.is_empty()),
                kind: DeployKind::parse(&label(LABEL_KIND)),
                files,
                outcome: DeployOutcome::Running,
                summary: String::new(),
                services: Vec::new(),
                objects: Vec::new(),
            };
            match revision.end.first() {
                Some(end) => {
                    record.outcome = DeployOutcome::parse(
                        end.labels.get(LABEL_OUTCOME).map_or("", String::as_str),
                    );
                    record.finished_at = Some(
                        end.labels
                            .get(LABEL_FINISHED)
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(end.created_at),
                    );
                    match unpack::<EndData>(&revision.end.data()) {
                        Ok(data) => {
                            record.summary = data.summary;
                            record.services = data.services.into_iter().map(service).collect();
                            record.objects = data
                                .objects
                                .into_iter()
                                .map(|o| ObjectRevision {
                                    kind: o.kind,
                                    id: o.id,
                                    name: o.name,
                                    spec: o.spec.get().to_owned(),
                                })
                                .collect();
                        }
                        Err(e) => problems.push(format!("the end record {e}")),
                    }
                }
                // A settled revision without an end reads as its settlement alone.
                None if revision.settled.is_some() => {}
                None if still_running(first.created_at, lock, now, expiry) => {}
                None => {
                    record.outcome = DeployOutcome::Interrupted;
                    record.summary = INTERRUPTED.to_owned();
                }
            }
            if let Some(settled) = revision.settled {
                let own = revision.end.first().map(|_| record.outcome.clone());
                record.outcome = DeployOutcome::parse(
                    settled.labels.get(LABEL_OUTCOME).map_or("", String::as_str),
                );
                record.finished_at = Some(
                    settled
                        .labels
                        .get(LABEL_FINISHED)
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(settled.created_at),
                );
                let note = String::from_utf8_lossy(&settled.data);
                record.summary = settled_summary(&note, own.as_ref());
            }
            if !problems.is_empty() {
                problems.insert(0, record.summary.clone());
                record.summary = problems
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
            }
            Some(record)
        })
        .collect();
    out.reverse();
    out
}

fn service(data: ServiceData) -> ServiceRevision {
    let after = data.after.map(|s| s.get().to_owned());
    ServiceRevision {
        service: data.service,
        before: if data.unchanged {
            after.clone()
        } else {
            data.before.map(|s| s.get().to_owned())
        },
        after,
        outcome: data.outcome,
    }
}

/// Who holds a lock object, and since when (the managers' clock).
pub fn lock_holder(lock: &ConfigObject) -> LockHolder {
    LockHolder {
        holder: lock
            .labels
            .get(LABEL_LOCK_HOLDER)
            .cloned()
            .unwrap_or_else(|| "an unknown deploy".to_owned()),
        since: lock.created_at,
    }
}

/// The lock object for a holder.
pub fn lock_object(stack: &str, holder: &str) -> NewObject {
    NewObject {
        name: lock_name(stack),
        labels: BTreeMap::from([
            (LABEL_LOCK_STACK.to_owned(), stack.to_owned()),
            (LABEL_LOCK_HOLDER.to_owned(), holder.to_owned()),
            (LABEL_LOCK_BEAT.to_owned(), "0".to_owned()),
        ]),
        // Swarm refuses an empty config.
        data: holder
            .as_bytes()
            .to_vec()
            .into_iter()
            .chain(*b"\n")
            .collect(),
    }
}

/// The labels that renew a lock: its beat counter raised by one.
pub fn renewed_labels(lock: &ConfigObject) -> BTreeMap<String, String> {
    let mut labels = lock.labels.clone();
    let beat: u64 = labels
        .get(LABEL_LOCK_BEAT)
        .and_then(|b| b.parse().ok())
        .unwrap_or(0);
    labels.insert(LABEL_LOCK_BEAT.to_owned(), (beat + 1).to_string());
    labels
}

/// Each revision's objects, to remove when it is forgotten: the first chunks last, so that a
/// removal cut short leaves a revision readers skip (its start incomplete) or still list whole.
pub fn removal_order(objects: &[ConfigObject]) -> Vec<&ConfigObject> {
    let rank = |o: &ConfigObject| {
        let first = o
            .labels
            .get(LABEL_CHUNK)
            .is_none_or(|c| c.starts_with("1/"));
        let start = o.labels.get(LABEL_RECORD).map(String::as_str) == Some("start");
        (first, start)
    };
    let mut ordered: Vec<&ConfigObject> = objects.iter().collect();
    ordered.sort_by_key(|o| rank(o));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmkeeper_rollout::revisions::LOCK_EXPIRY as E;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    /// The object as the engine would list it after creating `new` at `at`.
    fn stored(new: &NewObject, at: Timestamp) -> ConfigObject {
        ConfigObject {
            id: format!("id-{}", new.name),
            version: 1,
            created_at: at,
            updated_at: at,
            name: new.name.clone(),
            labels: new.labels.clone(),
            data: new.data.clone(),
        }
    }

    fn start<'a>(files: &'a [FileDigest], kind: &'a DeployKind) -> RevisionStart<'a> {
        RevisionStart {
            stack: "shop",
            by: "alice",
            action: None,
            kind,
            files,
            at: t(0),
        }
    }

    fn file(text: &str) -> FileDigest {
        FileDigest {
            path: "stack.yml".into(),
            sha256: sha256_hex(text.as_bytes()),
            text: Some(text.into()),
        }
    }

    fn service(
        name: &str,
        before: Option<&str>,
        after: Option<&str>,
        outcome: &str,
    ) -> ServiceRevision {
        ServiceRevision {
            service: name.into(),
            before: before.map(Into::into),
            after: after.map(Into::into),
            outcome: outcome.into(),
        }
    }

    #[test]
    fn each_stacks_newest_revision_comes_from_one_listing() {
        let files = [file("services: {}\n")];
        let kind = DeployKind::Deploy;
        let mut objects = Vec::new();
        for (stack, number) in [("shop", 1), ("shop", 3), ("blog", 2), ("shop", 2)] {
            let start = RevisionStart {
                stack,
                ..start(&files, &kind)
            };
            for new in start_objects(number, &start).unwrap() {
                objects.push(stored(&new, t(number as i64)));
            }
        }
        let newest = newest_by_stack(&objects);
        let numbers: Vec<(&str, Vec<u64>)> = newest
            .iter()
            .map(|(stack, objects)| {
                let owned: Vec<ConfigObject> = objects.iter().map(|o| (*o).clone()).collect();
                (stack.as_str(), numbers(&owned))
            })
            .collect();
        assert_eq!(numbers, [("blog", vec![2]), ("shop", vec![3])]);
    }

    /// Who and what are labels of their own; a start written before they were apart (no
    /// action label) has its `by` sentence split when read, and only such a start.
    #[test]
    fn who_and_what_read_back_apart_also_from_an_old_sentence() {
        let files = [file("services: {}\n")];
        let kind = DeployKind::Edit;
        let mut objects = Vec::new();
        let written: [(&str, Option<&str>); 3] = [
            ("alice", Some("edited in the dashboard")),
            ("deploy bot by ci", None),
            ("edited in the dashboard by bob", None),
        ];
        for (number, (by, action)) in (1..).zip(written) {
            let start = RevisionStart {
                by,
                action,
                ..start(&files, &kind)
            };
            for new in start_objects(number, &start).unwrap() {
                let mut object = stored(&new, t(0));
                if number == 3 {
                    // As an older swarmkeeper wrote it.
                    object.labels.remove(LABEL_ACTION);
                }
                objects.push(object);
            }
        }
        let read: Vec<(u64, String, Option<String>)> = records("shop", &objects, None, t(1), E)
            .into_iter()
            .map(|r| (r.revision, r.by, r.action))
            .collect();
        assert_eq!(
            read,
            [
                (3, "bob".into(), Some("edited in the dashboard".into())),
                (2, "deploy bot by ci".into(), None),
                (1, "alice".into(), Some("edited in the dashboard".into())),
            ]
        );
    }

    #[test]
    fn a_revision_reads_back_as_it_was_written() {
        let files = [file("services:\n  web:\n    image: app:2\n")];
        let kind = DeployKind::Deploy;
        let starts = start_objects(7, &start(&files, &kind)).unwrap();
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0].name, "swarmkeeper-rev-shop-7");
        let labels = &starts[0].labels;
        assert_eq!(labels[LABEL_STACK], "shop");
        assert_eq!(labels[LABEL_NUMBER], "7");
        assert_eq!(labels[LABEL_BY], "alice");
        assert_eq!(labels[LABEL_KIND], "deploy");
        assert!(labels
            .keys()
            .all(|k| k.starts_with("swarmkeeper.revision.")));
        let services = [
            service(
                "shop_web",
                Some(r#"{"v":1}"#),
                Some(r#"{"v":2}"#),
                "rolled back",
            ),
            service(
                "shop_db",
                Some(r#"{"db":1}"#),
                Some(r#"{"db":1}"#),
                "unchanged",
            ),
            service("shop_new", None, Some(r#"{"n":1}"#), "removed"),
        ];
        let used = [
            ObjectRevision {
                kind: ObjectKind::Network,
                id: "n1".into(),
                name: "shop_default".into(),
                spec: r#"{"Name":"shop_default","Driver":"overlay"}"#.into(),
            },
            ObjectRevision {
                kind: ObjectKind::Secret,
                id: "s1".into(),
                name: "shop_db".into(),
                spec: r#"{"Name":"shop_db","Labels":{}}"#.into(),
            },
        ];
        let end = RevisionEnd {
            outcome: &DeployOutcome::RolledBack,
            summary: "shop_web: task exited 1",
            services: &services,
            objects: &used,
            at: t(30),
        };
        let ends = end_objects("shop", 7, &end).unwrap();
        assert_eq!(ends[0].name, "swarmkeeper-rev-shop-7-end");
        assert_eq!(ends[0].labels[LABEL_OUTCOME], "rolled back");
        let objects: Vec<ConfigObject> = starts
            .iter()
            .chain(&ends)
            .map(|o| stored(o, t(1)))
            .collect();
        let records = records("shop", &objects, None, t(40), E);
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!((r.revision, r.by.as_str()), (7, "alice"));
        assert_eq!(r.started_at, t(0));
        assert_eq!(r.finished_at, Some(t(30)));
        assert_eq!(r.kind, DeployKind::Deploy);
        assert_eq!(r.outcome, DeployOutcome::RolledBack);
        assert_eq!(r.summary, "shop_web: task exited 1");
        assert_eq!(r.files, files);
        assert_eq!(r.services, services);
        assert_eq!(r.objects, used);
        assert!(!has_unfinished(&objects));
    }

    /// Tryout finding 20: what the rolled-back alert reads of a rollback the deploy engine
    /// made itself, from the end objects alone (what `rolled_back_filter` lists).
    #[test]
    fn a_rolled_back_end_names_its_revision_reason_and_services_put_back() {
        let services = [
            service("shop_web", Some("{}"), Some("{}"), "rolled back"),
            service("shop_new", None, Some("{}"), "removed"),
            service("shop_db", Some("{}"), Some("{}"), "unchanged"),
        ];
        let end = |outcome| RevisionEnd {
            outcome,
            summary: "shop_web: timed out after 10m",
            services: &services,
            objects: &[],
            at: t(30),
        };
        let mut objects: Vec<ConfigObject> =
            end_objects("shop", 5, &end(&DeployOutcome::RolledBack))
                .unwrap()
                .iter()
                .map(|o| stored(o, t(31)))
                .collect();
        let succeeded = DeployOutcome::Succeeded;
        objects.extend(
            end_objects("blog", 2, &end(&succeeded))
                .unwrap()
                .iter()
                .map(|o| stored(o, t(32))),
        );
        assert_eq!(
            rolled_back_ends(&objects),
            [RolledBackRevision {
                stack: "shop".into(),
                revision: 5,
                ended_at: t(31),
                reason: "shop_web: timed out after 10m".into(),
                services: vec!["shop_web".into()],
            }]
        );
        assert_eq!(
            rolled_back_filter(),
            ["swarmkeeper.revision.outcome=rolled back"]
        );
        assert!(!more_chunks(&objects[0]));
    }

    #[test]
    fn an_end_written_before_objects_were_recorded_reads_with_none() {
        let kind = DeployKind::Deploy;
        let starts = start_objects(2, &start(&[], &kind)).unwrap();
        let end = RevisionEnd {
            outcome: &DeployOutcome::Succeeded,
            summary: "",
            services: &[],
            objects: &[],
            at: t(5),
        };
        let mut ends = end_objects("shop", 2, &end).unwrap();
        // The end record exactly as the first format wrote it: no `objects` key.
        ends[0].data = pack(&serde_json::json!({
            "format": 1,
            "summary": "",
            "services": [{"service": "shop_web", "outcome": "converged", "after": {"v": 1}}],
        }));
        let objects: Vec<ConfigObject> = starts
            .iter()
            .chain(&ends)
            .map(|o| stored(o, t(1)))
            .collect();
        let records = records("shop", &objects, None, t(40), E);
        assert_eq!(records[0].outcome, DeployOutcome::Succeeded);
        assert_eq!(records[0].services.len(), 1);
        assert!(records[0].objects.is_empty());
    }

    #[test]
    fn a_record_past_one_config_is_cut_into_several_and_joined_again() {
        // Text that does not compress: 1.2 MB of pseudo-random letters.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let text: String = (0..1_200_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect();
        let files = [file(&text)];
        let kind = DeployKind::Rollback;
        let starts = start_objects(3, &start(&files, &kind)).unwrap();
        assert!(starts.len() >= 2, "{} objects", starts.len());
        assert!(starts.iter().all(|o| o.data.len() <= CHUNK_BYTES));
        assert_eq!(starts[1].name, "swarmkeeper-rev-shop-3.2");
        assert_eq!(starts[1].labels[LABEL_CHUNK], format!("2/{}", starts.len()));
        assert!(!starts[1].labels.contains_key(LABEL_BY));
        let mut objects: Vec<ConfigObject> = starts.iter().map(|o| stored(o, t(1))).collect();
        // Listed in any order.
        objects.reverse();
        let read = records("shop", &objects, None, t(2), E);
        assert_eq!(read[0].files[0].text.as_deref(), Some(text.as_str()));
        assert_eq!(read[0].kind, DeployKind::Rollback);
        // A chunk missing (being written or forgotten): the revision is not shown half.
        objects.remove(0);
        assert!(records("shop", &objects, None, t(2), E).is_empty());
    }

    #[test]
    fn a_revision_without_end_runs_under_a_live_lock_and_was_interrupted_without() {
        let kind = DeployKind::Deploy;
        let objects: Vec<ConfigObject> = start_objects(1, &start(&[], &kind))
            .unwrap()
            .iter()
            .map(|o| stored(o, t(10)))
            .collect();
        assert!(has_unfinished(&objects));
        let live = LockSeen {
            taken: t(5),
            renewed: t(20),
        };
        let running = records("shop", &objects, Some(live), t(25), E);
        assert_eq!(running[0].outcome, DeployOutcome::Running);
        let gone = records("shop", &objects, None, t(25), E);
        assert_eq!(gone[0].outcome, DeployOutcome::Interrupted);
        assert!(gone[0].summary.contains("half-applied"));
    }

    #[test]
    fn a_settled_revision_reads_as_settled_with_its_own_end_kept() {
        let kind = DeployKind::Deploy;
        let starts = start_objects(4, &start(&[], &kind)).unwrap();
        let settlement = Settlement {
            outcome: &DeployOutcome::Succeeded,
            note: "the server started on the new key",
            at: t(60),
        };
        let settled = settled_object("shop", 4, &settlement);
        assert_eq!(settled.name, "swarmkeeper-rev-shop-4-settled");
        assert_eq!(settled.labels[LABEL_RECORD], "settled");
        // Cut off with no end, its lock gone: interrupted, then settled.
        let mut objects: Vec<ConfigObject> = starts.iter().map(|o| stored(o, t(10))).collect();
        assert!(has_unfinished(&objects));
        objects.push(stored(&settled, t(61)));
        assert!(!has_unfinished(&objects), "a settled revision has ended");
        let read = records("shop", &objects, None, t(70), E);
        assert_eq!(read[0].outcome, DeployOutcome::Succeeded);
        assert_eq!(read[0].finished_at, Some(t(60)));
        assert_eq!(read[0].summary, "the server started on the new key");
        // Stopped at a safe point: its own end said interrupted, and is kept.
        let end = RevisionEnd {
            outcome: &DeployOutcome::Interrupted,
            summary: "interrupted by SIGTERM",
            services: &[],
            objects: &[],
            at: t(20),
        };
        let mut objects: Vec<ConfigObject> = starts
            .iter()
            .chain(&end_objects("shop", 4, &end).unwrap())
            .map(|o| stored(o, t(10)))
            .collect();
        objects.push(stored(&settled, t(61)));
        let read = records("shop", &objects, None, t(70), E);
        assert_eq!(read[0].outcome, DeployOutcome::Succeeded);
        assert_eq!(
            read[0].summary,
            "the server started on the new key (recorded interrupted at the time)"
        );
        // Never the first object of a record: forgotten before the start it belongs to.
        let order: Vec<&str> = removal_order(&objects)
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(order.last(), Some(&"swarmkeeper-rev-shop-4"));
    }

    #[test]
    fn revisions_come_newest_first_and_damage_is_shown_not_hidden() {
        let kind = DeployKind::Deploy;
        let mut objects = Vec::new();
        for number in [2, 10, 1] {
            for o in start_objects(number, &start(&[], &kind)).unwrap() {
                objects.push(stored(&o, t(0)));
            }
            let end = RevisionEnd {
                outcome: &DeployOutcome::Succeeded,
                summary: "",
                services: &[],
                objects: &[],
                at: t(1),
            };
            for o in end_objects("shop", number, &end).unwrap() {
                objects.push(stored(&o, t(1)));
            }
        }
        let numbers: Vec<u64> = records("shop", &objects, None, t(2), E)
            .iter()
            .map(|r| r.revision)
            .collect();
        assert_eq!(numbers, [10, 2, 1]);
        assert_eq!(super::numbers(&objects), [1, 2, 10]);
        let end_of_2 = objects
            .iter_mut()
            .find(|o| o.name == "swarmkeeper-rev-shop-2-end")
            .unwrap();
        end_of_2.data = b"not gzip".to_vec();
        let read = records("shop", &objects, None, t(2), E);
        let two = read.iter().find(|r| r.revision == 2).unwrap();
        assert_eq!(
            two.outcome,
            DeployOutcome::Succeeded,
            "the labels still say"
        );
        assert!(two.summary.contains("the end record"), "{}", two.summary);
    }

    #[test]
    fn a_record_of_a_newer_version_says_so() {
        let packed = pack(&serde_json::json!({"format": 9, "files": []}));
        let error = unpack::<StartData>(&packed).err().unwrap();
        assert!(error.contains("newer swarmkeeper (format 9)"), "{error}");
    }

    #[test]
    fn names_fit_swarm_s_rules_whatever_the_stack() {
        assert_eq!(
            object_name("shop", 12, Part::End, 2),
            "swarmkeeper-rev-shop-12-end.2"
        );
        assert_eq!(lock_name("shop"), "swarmkeeper-lock-shop");
        let long = "a".repeat(60);
        for name in [
            object_name(&long, u64::MAX, Part::End, MAX_CHUNKS),
            lock_name(&long),
            object_name("odd/name", 1, Part::Start, 1),
        ] {
            assert!(name.len() <= MAX_NAME, "{name}");
            assert!(name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        }
        assert_ne!(
            object_name(&long, 1, Part::Start, 1),
            object_name(&"b".repeat(60), 1, Part::Start, 1)
        );
    }

    #[test]
    fn a_lock_says_who_holds_it_and_renewing_raises_its_beat() {
        let lock = stored(&lock_object("shop", "alice"), t(3));
        assert!(!lock.data.is_empty(), "Swarm refuses an empty config");
        assert_eq!(
            lock_holder(&lock),
            LockHolder {
                holder: "alice".into(),
                since: t(3)
            }
        );
        let renewed = renewed_labels(&lock);
        assert_eq!(renewed[LABEL_LOCK_BEAT], "1");
        assert_eq!(renewed[LABEL_LOCK_HOLDER], "alice");
    }

    #[test]
    fn a_forgotten_revision_loses_its_first_objects_last() {
        let kind = DeployKind::Deploy;
        let big = [file(&"x".repeat(10))];
        let mut objects: Vec<ConfigObject> = start_objects(1, &start(&big, &kind))
            .unwrap()
            .iter()
            .map(|o| stored(o, t(0)))
            .collect();
        let end = RevisionEnd {
            outcome: &DeployOutcome::Succeeded,
            summary: "",
            services: &[],
            objects: &[],
            at: t(1),
        };
        objects.extend(
            end_objects("shop", 1, &end)
                .unwrap()
                .iter()
                .map(|o| stored(o, t(1))),
        );
        let mut extra = objects[0].clone();
        extra.name.push_str(".2");
        extra.labels.insert(LABEL_CHUNK.into(), "2/2".into());
        objects.push(extra);
        let order: Vec<&str> = removal_order(&objects)
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(
            order,
            [
                "swarmkeeper-rev-shop-1.2",
                "swarmkeeper-rev-shop-1-end",
                "swarmkeeper-rev-shop-1"
            ]
        );
    }
}
