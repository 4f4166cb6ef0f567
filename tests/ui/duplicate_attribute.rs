use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "events")]
#[redtrack(table = "other_events")]
struct Event {
    id: i64,
}

fn main() {}
