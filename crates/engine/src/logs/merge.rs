//! Lines of several tasks in time order. Pure: lines and instants in, lines out.
//!
//! Each task's lines come in order, the tasks' streams interleaved anyhow (a whole backlog of
//! one task, then another's). [`Merge`] holds lines back and lets them out oldest first, as a
//! watermark does: a line goes out once no other task can still send an older one. A task can,
//! as far as anyone knows, while it has sent nothing yet or has just sent a line, both for at
//! most [`SETTLE`]; a task with a line held back cannot (its own lines come in order), nor can
//! one whose stream ended. So a read that is not followed comes out wholly in time order, a
//! single task's lines go out at once, several busy tasks' lines go out merged, and a quiet
//! task holds the others back for [`SETTLE`] at most. A line that arrives more than [`SETTLE`]
//! late (a slow node) goes out when it arrives, after newer ones. When more than [`MAX_HELD`]
//! lines are held, the oldest go out regardless, so memory stays bounded.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use jiff::Timestamp;

/// How long a task that sent nothing (yet, or since its last line) can hold the others back.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The most lines held back at once.
pub const MAX_HELD: usize = 16 * 1024;

/// Lines of the tasks `K`, each a `T` with the engine's time of the line.
#[derive(Debug)]
pub struct Merge<K, T> {
    held: BinaryHeap<Held<K, T>>,
    /// Lines without a time (the engine's own messages): out at the next release.
    untimed: Vec<T>,
    tasks: HashMap<K, TaskState>,
    /// Tasks with no line held that may still send one older than those held, with when that
    /// stops holding the others back.
    waiting: HashMap<K, Instant>,
    /// Arrival order, which breaks ties between lines of the same time.
    seq: u64,
    settle: Duration,
    max_held: usize,
}

#[derive(Debug)]
struct TaskState {
    held: usize,
    /// When its last line came.
    last: Instant,
    /// No line of it will come any more.
    ended: bool,
}

#[derive(Debug)]
struct Held<K, T> {
    time: Timestamp,
    seq: u64,
    task: K,
    item: T,
}

impl<K, T> PartialEq for Held<K, T> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl<K, T> Eq for Held<K, T> {}

impl<K, T> PartialOrd for Held<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K, T> Ord for Held<K, T> {
    /// Reversed: the heap's top is the oldest line.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

impl<K: Eq + Hash + Clone, T> Merge<K, T> {
    /// A merge of the lines of `expected` (the tasks whose lines are wanted, known when the
    /// stream opened at `start`), with [`SETTLE`] and [`MAX_HELD`]. Lines of other tasks may
    /// come too.
    pub fn new(expected: impl IntoIterator<Item = K>, start: Instant) -> Merge<K, T> {
        Merge::with_limits(expected, start, SETTLE, MAX_HELD)
    }

    pub fn with_limits(
        expected: impl IntoIterator<Item = K>,
        start: Instant,
        settle: Duration,
        max_held: usize,
    ) -> Merge<K, T> {
        let mut merge = Merge {
            held: BinaryHeap::new(),
            untimed: Vec::new(),
            tasks: HashMap::new(),
            waiting: HashMap::new(),
            seq: 0,
            settle,
            max_held,
        };
        for task in expected {
            merge.tasks.insert(
                task.clone(),
                TaskState {
                    held: 0,
                    last: start,
                    ended: false,
                },
            );
            merge.waiting.insert(task, start + settle);
        }
        merge
    }

    /// A line of `task` that came at `now`, with the engine's `time` of it.
    pub fn push(&mut self, task: K, time: Option<Timestamp>, item: T, now: Instant) {
        let Some(time) = time else {
            self.untimed.push(item);
            return;
        };
        let state = self.tasks.entry(task.clone()).or_insert(TaskState {
            held: 0,
            last: now,
            ended: false,
        });
        state.held += 1;
        state.last = now;
        self.waiting.remove(&task);
        self.seq += 1;
        self.held.push(Held {
            time,
            seq: self.seq,
            task,
            item,
        });
    }

    /// A task that will send no more lines (its stream ended): it holds nobody back any more.
    pub fn end(&mut self, task: &K) {
        self.waiting.remove(task);
        if let Some(state) = self.tasks.get_mut(task) {
            state.ended = true;
        }
    }

    /// The lines that may go out at `now`, oldest first, at most `max`.
    pub fn release(&mut self, now: Instant, max: usize) -> Vec<T> {
        let mut out = self.take_untimed(max);
        if !self.waiting.is_empty() {
            self.waiting.retain(|_, until| *until > now);
        }
        while out.len() < max && (self.waiting.is_empty() || self.held.len() > self.max_held) {
            let Some(line) = self.held.pop() else { break };
            if let Some(state) = self.tasks.get_mut(&line.task) {
                state.held -= 1;
                let until = state.last + self.settle;
                if state.held == 0 && !state.ended && until > now {
                    self.waiting.insert(line.task, until);
                }
            }
            out.push(line.item);
        }
        out
    }

    /// The stream ended: every line left, oldest first, at most `max`.
    pub fn drain(&mut self, max: usize) -> Vec<T> {
        let mut out = self.take_untimed(max);
        while out.len() < max {
            let Some(line) = self.held.pop() else { break };
            out.push(line.item);
        }
        out
    }

    /// When [`Merge::release`] may let out a line that it would not let out now; `None` when
    /// nothing is held.
    pub fn deadline(&self) -> Option<Instant> {
        if self.held.is_empty() && self.untimed.is_empty() {
            return None;
        }
        self.waiting.values().min().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty() && self.untimed.is_empty()
    }

    fn take_untimed(&mut self, max: usize) -> Vec<T> {
        let n = self.untimed.len().min(max);
        let mut out = Vec::with_capacity(n.max(16));
        out.extend(self.untimed.drain(..n));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: u32) -> Option<Timestamp> {
        Some(Timestamp::from_second(1_700_000_000 + i64::from(second)).unwrap())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn one_task_goes_straight_through() {
        let start = Instant::now();
        let mut merge = Merge::new(["a"], start);
        merge.push("a", at(5), "a5", start);
        merge.push("a", at(6), "a6", start);
        assert_eq!(merge.release(start, 100), ["a5", "a6"]);
        assert_eq!(merge.deadline(), None);
    }

    #[test]
    fn a_backlog_of_several_tasks_comes_out_in_time_order() {
        let start = Instant::now();
        let mut merge = Merge::new(["a", "b", "c"], start);
        // The engine sends a's backlog, then b's; c has nothing to say.
        for (task, second) in [("a", 1), ("a", 4), ("a", 7), ("b", 2), ("b", 3), ("b", 9)] {
            merge.push(task, at(second), (task, second), start + ms(10));
        }
        assert!(
            merge.release(start + ms(20), 100).is_empty(),
            "c may still send"
        );
        assert_eq!(merge.deadline(), Some(start + SETTLE));
        let out = merge.release(start + SETTLE, 100);
        let seconds: Vec<u32> = out.iter().map(|(_, s)| *s).collect();
        assert_eq!(
            seconds,
            [1, 2, 3, 4, 7],
            "9 waits: a may still send older lines"
        );
        // a's next line releases b's 9 only if it is newer.
        merge.push("a", at(8), ("a", 8), start + SETTLE + ms(1));
        let out = merge.release(start + SETTLE + ms(1), 100);
        assert_eq!(out, [("a", 8)]);
        merge.push("a", at(10), ("a", 10), start + SETTLE + ms(2));
        assert_eq!(merge.release(start + SETTLE + ms(2), 100), [("b", 9)]);
        assert_eq!(merge.drain(100), [("a", 10)]);
    }

    #[test]
    fn a_quiet_task_holds_the_others_back_for_the_settle_time_at_most() {
        let start = Instant::now();
        let mut merge = Merge::new(["a", "b"], start);
        let late = start + SETTLE * 4;
        merge.push("a", at(1), 1, late);
        assert_eq!(merge.release(late, 10), [1], "b said nothing for long");
        merge.push("b", at(2), 2, late + ms(1));
        merge.push("b", at(3), 3, late + ms(1));
        assert_eq!(
            merge.release(late + ms(1), 10),
            Vec::<i32>::new(),
            "a spoke just now"
        );
        assert_eq!(merge.deadline(), Some(late + SETTLE));
        assert_eq!(merge.release(late + SETTLE, 10), [2, 3]);
    }

    #[test]
    fn untimed_lines_and_the_batch_size_are_respected() {
        let start = Instant::now();
        let mut merge = Merge::new(["a"], start);
        merge.push("a", None, 0, start);
        for s in 1..=5 {
            merge.push("a", at(s), s, start);
        }
        assert_eq!(merge.release(start, 3), [0, 1, 2]);
        assert_eq!(merge.release(start, 3), [3, 4, 5]);
        assert!(merge.is_empty());
    }

    #[test]
    fn memory_is_bounded_while_a_task_is_waited_for() {
        let start = Instant::now();
        let mut merge = Merge::with_limits(["a", "b"], start, SETTLE, 4);
        for s in (1..=6).rev() {
            merge.push("a", at(s), s, start);
        }
        assert_eq!(merge.release(start, 100), [1, 2], "down to the limit");
        assert_eq!(merge.drain(100), [3, 4, 5, 6]);
    }

    #[test]
    fn a_task_that_ended_holds_nobody_back() {
        let start = Instant::now();
        let mut merge = Merge::new(["a", "b"], start);
        merge.push("a", at(1), 1, start);
        merge.push("a", at(3), 3, start);
        merge.push("b", at(2), 2, start);
        merge.end(&"b");
        assert_eq!(merge.release(start, 10), [1, 2, 3]);
        assert_eq!(merge.deadline(), None);
        merge.push("a", at(4), 4, start);
        assert_eq!(merge.release(start, 10), [4]);
    }

    #[test]
    fn equal_times_keep_their_arrival_order() {
        let start = Instant::now();
        let mut merge = Merge::new(["a", "b"], start);
        merge.push("b", at(1), "b first", start);
        merge.push("a", at(1), "a second", start);
        assert_eq!(merge.drain(10), ["b first", "a second"]);
    }
}
