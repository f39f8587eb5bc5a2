//! The Redis store against a real `redis-server`: every table round-trips, bindings expire by
//! Redis's own key expiry, another node's change is announced, an outage fails fast and is
//! reported, and a restarted (empty) server is noticed as lost data.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use modules::store::redis::RedisStore;
use modules::store::{
    AddressRow, Change, HtableRow, HtableValue, LocationRow, Store, StoreError, Subscriber,
};

use super::redis_server::RedisServer;

fn binding(ruid: &str, user: &str, expires: i64) -> LocationRow {
    LocationRow {
        ruid: ruid.into(),
        username: user.into(),
        domain: "example.org".into(),
        contact: format!("sip:{user}@127.0.0.1:5070"),
        received: "sip:127.0.0.1:5070".into(),
        expires,
        q: 500,
        callid: "c1".into(),
        cseq: 7,
        last_modified: 1_700_000_000,
        methods: -1,
        user_agent: "phone 1.0".into(),
        socket: "udp:127.0.0.1:5060".into(),
        ..LocationRow::default()
    }
}

fn raw(r: &RedisServer) -> redis::Connection {
    redis::Client::open(r.url(0))
        .unwrap()
        .get_connection()
        .unwrap()
}

#[test]
fn every_table_round_trips() {
    let r = RedisServer::start();
    let s = RedisStore::open(&r.url(0)).unwrap();
    let far = modules::store::now_unix() + 3600;
    s.put_location("location", &binding("r1", "alice", far))
        .unwrap();
    let mut b = binding("r1", "alice", far);
    b.cseq = 8;
    s.put_location("location", &b).unwrap();
    s.put_location("location", &binding("r2", "bob", far))
        .unwrap();
    let mut rows = s.locations("location").unwrap();
    rows.sort_by(|a, b| a.ruid.cmp(&b.ruid));
    assert_eq!(rows, vec![b.clone(), binding("r2", "bob", far)]);
    assert_eq!(
        s.location_aor("location", "alice@example.org").unwrap(),
        vec![b]
    );
    s.delete_location("location", "r1").unwrap();
    assert!(s
        .location_aor("location", "alice@example.org")
        .unwrap()
        .is_empty());
    assert_eq!(s.locations("location").unwrap().len(), 1);
    assert!(matches!(
        s.locations("bad name"),
        Err(StoreError::TableName(_))
    ));

    let sub = Subscriber {
        username: "bob".into(),
        domain: "d".into(),
        password: "pw".into(),
        ..Subscriber::default()
    };
    s.put_subscriber("subscriber", &sub).unwrap();
    assert_eq!(
        s.subscriber("subscriber", "bob", "d").unwrap(),
        Some(sub.clone())
    );
    assert_eq!(
        s.subscriber("subscriber", "bob", "").unwrap(),
        Some(sub.clone())
    );
    assert_eq!(s.subscribers("subscriber").unwrap(), vec![sub]);
    assert!(s.delete_subscriber("subscriber", "bob", "d").unwrap());
    assert!(!s.delete_subscriber("subscriber", "bob", "d").unwrap());
    assert!(s.subscriber("subscriber", "bob", "d").unwrap().is_none());

    let a = AddressRow {
        grp: 1,
        ip_addr: "10.0.0.0".into(),
        mask: 8,
        port: 0,
        tag: "lan".into(),
    };
    s.add_address("address", &a).unwrap();
    s.add_address("address", &a).unwrap();
    assert_eq!(s.addresses("address").unwrap(), vec![a.clone(), a.clone()]);
    assert_eq!(s.delete_address("address", &a).unwrap(), 2);
    assert!(s.addresses("address").unwrap().is_empty());

    let row = HtableRow {
        key_name: "k:1".into(),
        value: HtableValue::Str("a:b c".into()),
        expires: 0,
    };
    let n = HtableRow {
        key_name: "n".into(),
        value: HtableValue::Int(-3),
        expires: 42,
    };
    s.put_htable("htable", &row).unwrap();
    s.put_htable("htable", &n).unwrap();
    assert_eq!(s.htable_rows("htable").unwrap(), vec![row, n]);
    s.delete_htable("htable", "k:1").unwrap();
    assert_eq!(s.htable_rows("htable").unwrap().len(), 1);
}

#[test]
fn bindings_expire_by_redis_key_expiry() {
    let r = RedisServer::start();
    let s = RedisStore::open(&r.url(0)).unwrap();
    let now = modules::store::now_unix();
    s.put_location("location", &binding("short", "carol", now + 1))
        .unwrap();
    s.put_location("location", &binding("long", "carol", now + 600))
        .unwrap();
    s.put_location("location", &binding("ever", "dave", 0))
        .unwrap();
    let mut c = raw(&r);
    let ttl =
        |c: &mut redis::Connection, k: &str| -> i64 { redis::cmd("TTL").arg(k).query(c).unwrap() };
    assert!((0..=1).contains(&ttl(&mut c, "sipd:loc:location:b:short")));
    assert!(ttl(&mut c, "sipd:loc:location:b:long") > 590);
    // The AoR's set lives as long as its longest binding.
    assert!(ttl(&mut c, "sipd:loc:location:a:carol@example.org") > 590);
    assert_eq!(ttl(&mut c, "sipd:loc:location:b:ever"), -1);
    assert_eq!(ttl(&mut c, "sipd:loc:location:a:dave@example.org"), -1);
    // Redis removes the short one by itself; a read drops it from the AoR's set.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = s.location_aor("location", "carol@example.org").unwrap();
        if rows.len() == 1 {
            assert_eq!(rows[0].ruid, "long");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "binding did not expire: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("sipd:loc:location:a:carol@example.org")
        .query(&mut c)
        .unwrap();
    assert_eq!(members, vec!["long".to_string()]);
}

#[test]
fn changes_are_announced_to_other_nodes_and_outages_recover() {
    let mut r = RedisServer::start();
    let a = RedisStore::open(&format!("{}?timeout_ms=100", r.url(3))).unwrap();
    let b = RedisStore::open(&r.url(3)).unwrap();
    let other_db = RedisStore::open(&r.url(4)).unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    a.watch(Arc::new(move |c| {
        let _ = tx.lock().unwrap().send(c);
    }))
    .unwrap();
    let next = |rx: &mpsc::Receiver<Change>| rx.recv_timeout(Duration::from_secs(3)).unwrap();
    assert_eq!(next(&rx), Change::Resync { lost: false });
    let far = modules::store::now_unix() + 600;
    // Its own writes are not announced to itself; another node's are, once per change.
    a.put_location("location", &binding("ra", "alice", far))
        .unwrap();
    other_db
        .put_location("location", &binding("rx", "alice", far))
        .unwrap();
    b.put_location("location", &binding("rb", "alice", far))
        .unwrap();
    assert_eq!(
        next(&rx),
        Change::Location {
            table: "location".into(),
            aor: "alice@example.org".into()
        }
    );
    b.delete_location("location", "rb").unwrap();
    assert!(matches!(next(&rx), Change::Location { .. }));
    // Deleting what is already gone says nothing.
    b.delete_location("location", "rb").unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());

    // Outage: calls fail within the timeout, then at once; the store says it is unavailable.
    r.stop();
    let t = Instant::now();
    assert!(a.locations("location").is_err());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let t = Instant::now();
    for _ in 0..100 {
        assert!(a.location_aor("location", "alice@example.org").is_err());
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(!a.available());
    assert_eq!(a.outages(), 1);
    // Back, empty: the listener reconnects and reports the lost data.
    r.restart();
    assert_eq!(next(&rx), Change::Resync { lost: true });
    assert!(a.available());
    assert!(a.locations("location").unwrap().is_empty());
    assert_eq!(a.outages(), 1);
}
