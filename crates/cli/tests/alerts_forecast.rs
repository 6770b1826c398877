//! The disk-full forecast at the defaults, on a real small-disk engine: a throwaway daemon whose
//! data root is a 256 MiB tmpfs (`lab/small-engine.sh`), `swarmkeeper agent` and `swarmkeeper
//! server --alert-webhook` as processes of their own with no option but where to report (the
//! agent reports every 30 s), and a file growing steadily on the tmpfs: from where the disk
//! stands to 95 % in 150 s, a fast fill like the seed incident's. The "disk full in …" alert must
//! reach the webhook receiver before the disk reaches the GC high threshold (85 %, about 130 s
//! in). Prints the time from the fill's start to the alert and the usage when it arrived.
//!
//! At the defaults a trend that predicts full within minutes needs three samples spanning a
//! quarter of its time left, and holds for a quarter of its time left (`for` at most 5m): the
//! alert comes after three reports, about a minute and a half into the fill. The whole test
//! takes about two minutes. The small engine and not the Swarm lab (`lab/lab.sh`): the lab's
//! server runs in a container inside the manager's network namespace (no masquerading), out
//! of reach of a receiver on this machine without changing the stack file, and bringing the lab
//! up and deploying the stack takes 40 s of the two minutes. Needs root (the small engine);
//! skips otherwise.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use support::server::Server;
use support::*;

/// How long the fill takes to reach [`FILL_TO`] percent: it goes on past the high threshold,
/// so that an alert arriving late is seen late.
const FILL_FOR: Duration = Duration::from_secs(150);
const FILL_TO: u64 = 95;
const HIGH_THRESHOLD: u64 = 85;

#[test]
fn a_steadily_filling_disk_is_forecast_full_before_the_high_threshold() {
    if !is_root() {
        eprintln!("skipped: the small engine (lab/small-engine.sh) needs root");
        return;
    }
    let lab = Lab::up("afc", "256m");
    let data = std::path::PathBuf::from(format!("/run/swarmkeeper-lab/{}/data", lab.name));
    let dir = tempdir("alert-forecast");
    let (port, messages) = webhook_receiver();
    let secret = dir.join("report-secret");
    std::fs::write(&secret, "alert-forecast-report-secret\n").unwrap();
    let server = Server::start_with(
        &dir.join("server"),
        &[
            ("DOCKER_HOST", lab.host.as_str()),
            ("SWARMKEEPER_REPORT_SECRET_FILE", secret.to_str().unwrap()),
            (
                "SWARMKEEPER_ALERT_WEBHOOK",
                &format!("http://127.0.0.1:{port}/hook"),
            ),
        ],
    );
    let _agent = Agent::reporting(&lab.host, &dir.join("agent"), server.port(), &secret);

    // A steady fill: written, not allocated (tmpfs keeps every written page).
    let (capacity, available) = fs_space(&data);
    let start_usage = usage_percent(capacity, available);
    let to_write = (capacity * FILL_TO / 100).saturating_sub(capacity - available);
    let filler = data.join("swarmkeeper-test-forecast-filler");
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let fill = {
        let (filler, stop) = (filler.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&filler).unwrap();
            let chunk = vec![0u8; 1 << 20];
            let mut written = 0u64;
            while written < to_write && !stop.load(Ordering::Relaxed) {
                let due = FILL_FOR.mul_f64(written as f64 / to_write as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                let n = (to_write - written).min(chunk.len() as u64) as usize;
                file.write_all(&chunk[..n]).unwrap();
                written += n as u64;
            }
        })
    };

    let deadline = started + FILL_FOR + Duration::from_secs(30);
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((at, body)) = messages.recv_timeout(left) else {
            break None;
        };
        if body["rule"] == "disk-full-forecast" {
            break Some((at, body));
        }
    };
    // The usage the moment the alert arrived: the fill stops now.
    stop.store(true, Ordering::Relaxed);
    let (capacity, available) = fs_space(&data);
    let usage = usage_percent(capacity, available);
    fill.join().unwrap();
    let _ = std::fs::remove_file(&filler);
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);

    let (at, alert) = found.unwrap_or_else(|| {
        panic!("no disk-full-forecast alert within the fill and 30 s (disk at {usage}%)")
    });
    let after = at.duration_since(started_wall).unwrap_or_default();
    eprintln!(
        "fill started at {start_usage}% -> disk-full-forecast alert received after {:.0} s, \
         disk at {usage}% then (agent and server defaults): {}",
        after.as_secs_f64(),
        alert["summary"]
    );
    assert_eq!(alert["status"], "firing", "{alert}");
    assert!(
        usage < HIGH_THRESHOLD,
        "the forecast came only at {usage}%, at or past the high threshold"
    );
}
