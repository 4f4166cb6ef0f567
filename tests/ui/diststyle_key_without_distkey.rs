use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "events", diststyle = "key")]
struct Event {
    user_id: i64,
}

fn main() {}
