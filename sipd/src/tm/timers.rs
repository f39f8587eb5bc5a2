//! [`TimerQueue`]: one worker's transaction timers, ordered by deadline, driven by one task of
//! that worker (no task per timer).
//!
//! A timer is a [`TimerReq`] under a [`TimerKey`] (deadline in milliseconds since the queue was
//! made, then a per-queue sequence number), in FIFO lanes, one per duration class (`Lanes`):
//! arming is a push at the back of its lane, cancelling a binary search in it, the next
//! deadline the earliest lane front. The transaction keeps a [`TimerHandle`]
//! of each timer armed for it; when it ends, [`TimerQueue::cancel`] removes them at once from
//! the queue that holds them: directly when that is this worker's, else through that worker's
//! [`CancelInbox`] (a small per-worker list behind its own lock, touched only by cross-worker
//! cancellations), drained by the owner before it next looks at its queue. So a finished
//! transaction leaves nothing behind in any queue, and a queue holds only the timers of live
//! transactions.
//!
//! Measured against the previous design (a tokio task and a tokio sleep per timer), see
//! "Memory and timers" in `docs/PERFORMANCE.md`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use super::{TimerKind, TxnCell};

/// A timer's place in its queue: its deadline (ms since the queue's start), then the order in
/// which it was armed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey {
    at: u64,
    seq: u64,
}

/// A timer armed for a transaction: which worker's queue holds it and under which key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerHandle {
    /// The worker whose queue holds it.
    pub worker: usize,
    /// Its key there.
    pub key: TimerKey,
}

/// What a timer does when it expires: the transaction (held weakly: only the table keeps a
/// transaction alive) and which of its timers.
#[derive(Debug)]
pub struct TimerReq {
    /// The transaction.
    pub txn: Weak<TxnCell>,
    /// Which timer.
    pub kind: TimerKind,
}

/// Timers taken out of a queue by [`TimerQueue::take_all`]; dropping it drops them.
#[derive(Debug)]
pub struct Taken(BTreeMap<TimerKey, TimerReq>);

impl Taken {
    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Cancellations other workers post for one worker's queue.
#[derive(Debug, Default)]
pub struct CancelInbox {
    pending: AtomicBool,
    keys: Mutex<Vec<TimerKey>>,
}

impl CancelInbox {
    /// Post the cancellation of `key`.
    pub fn post(&self, key: TimerKey) {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(key);
        self.pending.store(true, Ordering::Release);
    }

    /// Take what was posted (one relaxed load when nothing was).
    fn take(&self) -> Vec<TimerKey> {
        if !self.pending.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *keys)
    }
}

/// The coarsest rounding of a wait timer's deadline, in ms.
pub const WAIT_GRAIN_MS: u64 = 250;

/// How finely the deadline of a timer of `kind` armed for `ms` is kept: wait timers (D, I, J,
/// K, the end of Accepted: they only absorb retransmissions, then let the transaction go) are
/// rounded up to a multiple of `ms / 16`, at most [`WAIT_GRAIN_MS`], so those of transactions
/// that ended close together expire in one wake-up of the worker (one every 250 ms with the
/// default T4 of 5 s, whatever the call rate) rather than one each, as Kamailio's wait timer
/// runs on its coarse timer ticks. A wait lasts at most 1/16 longer. Every other timer (the
/// retransmissions, the final-response and ACK timeouts) keeps the millisecond.
pub fn wait_grain(kind: TimerKind, ms: u64) -> u64 {
    use super::client::ClientTimer;
    use super::server::ServerTimer;
    match kind {
        TimerKind::Server(ServerTimer::Wait)
        | TimerKind::Client {
            timer: ClientTimer::Wait,
            ..
        } => (ms / 16).min(WAIT_GRAIN_MS),
        _ => 1,
    }
}

/// Lanes kept at most; timers of further (duration, rounding) classes go to a `BTreeMap`.
const MAX_LANES: usize = 16;

/// The timers of one queue, in FIFO lanes: one per (duration, rounding) class. Timers of one
/// class armed one after the other have nondecreasing deadlines ("now" never goes back), so
/// each lane is sorted by arming alone: arming is a push at the back, the next deadline is the
/// earliest lane front, a cancellation is a binary search in its lane that leaves a hole
/// (`None`) until the front reaches it. A proxy arms a handful of classes (retransmission
/// intervals, the final-response timers, T4); a class beyond [`MAX_LANES`], or a timer that
/// would break its lane's order, goes to `other`, a `BTreeMap` as every timer did before
/// (`TimerQueue::arm` went from 3,932 to 1,801 instructions per call of workload B, about a
/// dozen timers, with a few hundred queued).
#[derive(Debug, Default)]
struct Lanes {
    lanes: Vec<Lane>,
    other: BTreeMap<TimerKey, TimerReq>,
    /// Timers armed in `lanes` (holes not counted).
    live: usize,
}

#[derive(Debug)]
struct Lane {
    class: (u64, u64),
    /// Sorted by key; front and back are never holes.
    q: std::collections::VecDeque<(TimerKey, Option<TimerReq>)>,
}

impl Lane {
    /// Drop the holes at both ends.
    fn trim(&mut self) {
        while self.q.front().is_some_and(|(_, r)| r.is_none()) {
            self.q.pop_front();
        }
        while self.q.back().is_some_and(|(_, r)| r.is_none()) {
            self.q.pop_back();
        }
    }
}

impl Lanes {
    fn insert(&mut self, class: (u64, u64), key: TimerKey, req: TimerReq) {
        let lane = match self.lanes.iter().position(|l| l.class == class) {
            Some(i) => Some(i),
            None => match self.lanes.iter().position(|l| l.q.is_empty()) {
                Some(i) => {
                    if let Some(l) = self.lanes.get_mut(i) {
                        l.class = class;
                    }
                    Some(i)
                }
                None if self.lanes.len() < MAX_LANES => {
                    self.lanes.push(Lane {
                        class,
                        q: std::collections::VecDeque::new(),
                    });
                    Some(self.lanes.len() - 1)
                }
                None => None,
            },
        };
        if let Some(l) = lane.and_then(|i| self.lanes.get_mut(i)) {
            if l.q.back().is_none_or(|(k, _)| *k < key) {
                l.q.push_back((key, Some(req)));
                self.live += 1;
                return;
            }
        }
        self.other.insert(key, req);
    }

    fn remove(&mut self, key: &TimerKey) {
        for l in &mut self.lanes {
            let (Some((first, _)), Some((last, _))) = (l.q.front(), l.q.back()) else {
                continue;
            };
            if key < first || key > last {
                continue;
            }
            if let Ok(i) = l.q.binary_search_by(|(k, _)| k.cmp(key)) {
                if let Some((_, slot)) = l.q.get_mut(i) {
                    if slot.take().is_some() {
                        self.live -= 1;
                        l.trim();
                    }
                }
                return;
            }
        }
        self.other.remove(key);
    }

    /// The earliest key and where it is (`None`: in `other`).
    fn first(&self) -> Option<(TimerKey, Option<usize>)> {
        let mut best = self.other.first_key_value().map(|(k, _)| (*k, None));
        for (i, l) in self.lanes.iter().enumerate() {
            if let Some((k, _)) = l.q.front() {
                if best.is_none_or(|(b, _)| *k < b) {
                    best = Some((*k, Some(i)));
                }
            }
        }
        best
    }

    fn first_key(&self) -> Option<TimerKey> {
        self.first().map(|(k, _)| k)
    }

    fn pop_first(&mut self) -> Option<(TimerKey, TimerReq)> {
        match self.first()? {
            (_, None) => self.other.pop_first(),
            (_, Some(i)) => {
                let l = self.lanes.get_mut(i)?;
                let (key, req) = l.q.pop_front()?;
                l.trim();
                self.live -= 1;
                Some((key, req?))
            }
        }
    }

    fn len(&self) -> usize {
        self.live + self.other.len()
    }

    fn take_all(&mut self) -> BTreeMap<TimerKey, TimerReq> {
        let mut all = std::mem::take(&mut self.other);
        for l in &mut self.lanes {
            all.extend(l.q.drain(..).filter_map(|(k, r)| Some((k, r?))));
        }
        self.live = 0;
        all
    }
}

/// One worker's timers.
#[derive(Debug)]
pub struct TimerQueue {
    worker: usize,
    start: Instant,
    /// "Now" for the event being handled (ms since `start`), read from the clock at most once
    /// per event.
    now: Option<u64>,
    seq: u64,
    map: Lanes,
    /// The deadline the driver sleeps until (`u64::MAX`: none; 0: it is running and looks at
    /// the queue again before it sleeps).
    sleeping_until: u64,
    /// A timer earlier than `sleeping_until` was armed: the driver must be woken.
    wake: bool,
}

impl TimerQueue {
    /// An empty queue for worker `worker`.
    pub fn new(worker: usize) -> TimerQueue {
        TimerQueue {
            worker,
            start: Instant::now(),
            now: None,
            seq: 0,
            map: Lanes::default(),
            sleeping_until: u64::MAX,
            wake: false,
        }
    }

    /// The worker this queue belongs to.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// A new event starts: "now" is read again at the next arm.
    pub fn begin_event(&mut self) {
        self.now = None;
    }

    fn clock(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn now(&mut self) -> u64 {
        match self.now {
            Some(n) => n,
            None => {
                let n = self.clock();
                self.now = Some(n);
                n
            }
        }
    }

    /// Arm `req` to expire after `after` (rounded up to the millisecond; a wait timer
    /// further, see [`wait_grain`]).
    pub fn arm(&mut self, req: TimerReq, after: Duration) -> TimerHandle {
        let ms = u64::try_from(after.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
        let mut at = self.now().saturating_add(ms);
        let grain = wait_grain(req.kind, ms);
        if grain > 1 {
            at = at.div_ceil(grain).saturating_mul(grain);
        }
        let key = TimerKey { at, seq: self.seq };
        self.seq += 1;
        if key.at < self.sleeping_until {
            self.wake = true;
        }
        self.map.insert((ms, grain), key, req);
        TimerHandle {
            worker: self.worker,
            key,
        }
    }

    /// Remove the timer under `key`, if still armed.
    pub fn cancel(&mut self, key: TimerKey) {
        self.map.remove(&key);
    }

    /// Apply the cancellations other workers posted in `inbox`.
    pub fn drain(&mut self, inbox: Option<&CancelInbox>) {
        if let Some(inbox) = inbox {
            for key in inbox.take() {
                self.map.remove(&key);
            }
        }
    }

    /// The next timer due now, removed from the queue.
    pub fn pop_due(&mut self) -> Option<(TimerHandle, TimerReq)> {
        let now = self.clock();
        self.pop_due_at(now)
    }

    /// [`Self::pop_due`] with "now" given.
    fn pop_due_at(&mut self, now: u64) -> Option<(TimerHandle, TimerReq)> {
        self.now = Some(now);
        let first = self.map.first_key()?;
        if first.at > now {
            return None;
        }
        let (key, req) = self.map.pop_first()?;
        Some((
            TimerHandle {
                worker: self.worker,
                key,
            },
            req,
        ))
    }

    /// The driver goes to sleep: the instant of the next deadline, if any. Arming an earlier
    /// timer from now on sets the wake flag ([`Self::take_wake`]).
    pub fn sleep(&mut self) -> Option<Instant> {
        self.wake = false;
        match self.map.first_key() {
            Some(k) => {
                self.sleeping_until = k.at;
                Some(self.start + Duration::from_millis(k.at))
            }
            None => {
                self.sleeping_until = u64::MAX;
                None
            }
        }
    }

    /// The driver woke and works: no wake is needed until it sleeps again.
    pub fn awake(&mut self) {
        self.sleeping_until = 0;
        self.wake = false;
    }

    /// Whether the driver must be woken (an earlier timer was armed since it slept); clears it.
    pub fn take_wake(&mut self) -> bool {
        std::mem::take(&mut self.wake)
    }

    /// Take every armed timer out of the queue without running it, for callers that run no
    /// timer driver (offline tools, tests).
    pub fn take_all(&mut self) -> Taken {
        Taken(self.map.take_all())
    }

    /// Timers armed.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tm::server::ServerTimer;

    fn req() -> TimerReq {
        TimerReq {
            txn: Weak::new(),
            kind: TimerKind::Server(ServerTimer::Wait),
        }
    }

    #[test]
    fn lanes_behave_like_one_ordered_map() {
        use crate::tm::client::ClientTimer;
        // Random arming (many duration classes, more than MAX_LANES), cancelling (own and
        // already expired keys) and expiring, against a BTreeMap of the same keys.
        let mut q = TimerQueue::new(0);
        let mut model: BTreeMap<TimerKey, ()> = BTreeMap::new();
        let mut keys: Vec<TimerKey> = Vec::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut now = 0u64;
        for step in 0..20_000 {
            now += rnd(3);
            match rnd(10) {
                0..=4 => {
                    let ms = [500u64, 1000, 2000, 4000, 5000, 32000][rnd(6) as usize]
                        + if rnd(8) == 0 { rnd(40) } else { 0 };
                    let kind = if rnd(2) == 0 {
                        TimerKind::Server(ServerTimer::Wait)
                    } else {
                        TimerKind::Client {
                            branch: 0,
                            cancel: false,
                            timer: ClientTimer::Final(1),
                        }
                    };
                    q.now = Some(now);
                    let h = q.arm(
                        TimerReq {
                            txn: Weak::new(),
                            kind,
                        },
                        Duration::from_millis(ms),
                    );
                    model.insert(h.key, ());
                    keys.push(h.key);
                }
                5..=7 if !keys.is_empty() => {
                    let k = keys.swap_remove(rnd(keys.len() as u64) as usize);
                    q.cancel(k);
                    model.remove(&k);
                }
                _ => {
                    now += rnd(4000);
                    while let Some((h, _)) = q.pop_due_at(now) {
                        let (want, ()) = model.pop_first().expect("model has it");
                        assert_eq!(h.key, want, "step {step}");
                        assert!(h.key.at <= now);
                    }
                    assert!(model.first_key_value().is_none_or(|(k, _)| k.at > now));
                }
            }
            assert_eq!(q.len(), model.len(), "step {step}");
            assert_eq!(q.map.first_key(), model.first_key_value().map(|(k, _)| *k));
        }
        let taken = q.take_all();
        assert_eq!(taken.len(), model.len());
        assert!(q.is_empty());
    }

    #[test]
    fn wait_timers_of_close_transactions_share_a_deadline() {
        use crate::tm::client::ClientTimer;
        let mut q = TimerQueue::new(0);
        let t4 = Duration::from_secs(5);
        let at = |q: &mut TimerQueue, now: u64, kind: TimerKind, after: Duration| {
            q.now = Some(now);
            q.arm(
                TimerReq {
                    txn: Weak::new(),
                    kind,
                },
                after,
            )
            .key
            .at
        };
        let server_wait = TimerKind::Server(ServerTimer::Wait);
        let client_wait = TimerKind::Client {
            branch: 0,
            cancel: false,
            timer: ClientTimer::Wait,
        };
        assert_eq!(at(&mut q, 1000, server_wait, t4), 6000);
        assert_eq!(at(&mut q, 1001, server_wait, t4), 6250);
        assert_eq!(at(&mut q, 1249, client_wait, t4), 6250);
        assert_eq!(at(&mut q, 1250, client_wait, t4), 6250);
        // Never earlier than asked, at most 1/16 later.
        for now in (0..2000).step_by(37) {
            for ms in [1u64, 15, 16, 40, 100, 800, 5000, 32000] {
                let got = at(&mut q, now, server_wait, Duration::from_millis(ms));
                assert!(
                    got >= now + ms && got <= now + ms + ms / 16,
                    "{now} {ms} {got}"
                );
            }
        }
        // Other timers keep the millisecond.
        let retransmit = TimerKind::Server(ServerTimer::Retransmit(Duration::from_millis(500)));
        assert_eq!(at(&mut q, 1001, retransmit, t4), 6001);
        let fr = TimerKind::Client {
            branch: 0,
            cancel: false,
            timer: ClientTimer::Final(1),
        };
        assert_eq!(at(&mut q, 1001, fr, t4), 6001);
    }

    #[test]
    fn expires_in_deadline_order_and_cancels() {
        let mut q = TimerQueue::new(3);
        q.begin_event();
        let late = q.arm(req(), Duration::from_millis(40));
        let early = q.arm(req(), Duration::from_millis(10));
        let gone = q.arm(req(), Duration::from_millis(5));
        assert_eq!(early.worker, 3);
        q.cancel(gone.key);
        assert_eq!(q.len(), 2);
        assert!(q.pop_due().is_none(), "nothing is due yet");
        std::thread::sleep(Duration::from_millis(15));
        assert_eq!(q.pop_due().map(|(h, _)| h), Some(early));
        assert!(q.pop_due().is_none());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(q.pop_due().map(|(h, _)| h), Some(late));
        assert!(q.is_empty());
    }

    #[test]
    fn wakes_the_driver_only_for_an_earlier_deadline() {
        let mut q = TimerQueue::new(0);
        q.begin_event();
        q.arm(req(), Duration::from_secs(10));
        assert!(q.take_wake(), "the driver slept with nothing armed");
        assert!(q.sleep().is_some());
        q.arm(req(), Duration::from_secs(20));
        assert!(!q.take_wake(), "later than what the driver waits for");
        q.arm(req(), Duration::from_secs(1));
        assert!(q.take_wake());
        q.awake();
        q.arm(req(), Duration::from_millis(1));
        assert!(
            !q.take_wake(),
            "a running driver looks again before sleeping"
        );
    }

    #[test]
    fn cancellations_from_other_workers_arrive_through_the_inbox() {
        let mut q = TimerQueue::new(1);
        let inbox = CancelInbox::default();
        q.begin_event();
        let a = q.arm(req(), Duration::from_secs(5));
        let b = q.arm(req(), Duration::from_secs(6));
        inbox.post(a.key);
        q.drain(Some(&inbox));
        assert_eq!(q.len(), 1);
        q.drain(Some(&inbox));
        q.cancel(b.key);
        assert!(q.is_empty());
    }
}
