//! Reading the engine's log stream (issue 11): 32 MiB in 64 KiB chunks, as a TTY progress bar
//! that never writes a newline (before the fix, each chunk searched the whole buffer again:
//! 31 s of CPU), and as ordinary framed lines of 100 bytes with details and timestamps.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use swarmkeeper_engine::logs::demux::Demux;

const TOTAL: usize = 32 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

fn read(bytes: &[u8], timestamps: bool) -> usize {
    let mut demux = Demux::new(timestamps);
    let mut lines = Vec::new();
    let mut count = 0;
    for chunk in bytes.chunks(CHUNK) {
        demux.push(chunk, &mut lines);
        count += lines.len();
        lines.clear();
    }
    demux.finish(&mut lines);
    count + lines.len()
}

fn progress_bar() -> Vec<u8> {
    b"\r[=====>    ] 42% "
        .iter()
        .copied()
        .cycle()
        .take(TOTAL)
        .collect()
}

fn framed_lines() -> Vec<u8> {
    let line = format!(
        "2026-01-01T00:00:00.123456789Z com.docker.swarm.node.id=n1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 {}\n",
        "x".repeat(100)
    );
    let mut frame = vec![1, 0, 0, 0];
    frame.extend_from_slice(&(line.len() as u32).to_be_bytes());
    frame.extend_from_slice(line.as_bytes());
    frame
        .iter()
        .copied()
        .cycle()
        .take(TOTAL / frame.len() * frame.len())
        .collect()
}

fn demux(c: &mut Criterion) {
    let mut group = c.benchmark_group("demux");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(TOTAL as u64));
    let tty = progress_bar();
    group.bench_function("tty without newlines, 32 MiB", |b| {
        b.iter(|| read(black_box(&tty), false))
    });
    let framed = framed_lines();
    group.bench_function("framed lines, 32 MiB", |b| {
        b.iter(|| read(black_box(&framed), true))
    });
    group.finish();
}

criterion_group!(benches, demux);
criterion_main!(benches);
