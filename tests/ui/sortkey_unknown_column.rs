use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "events", sortkey = "created_at, timestmp")]
struct Event {
    created_at: i64,
    timestamp: i32,
}

fn main() {}
