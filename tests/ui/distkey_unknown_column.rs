use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "events", distkey = "user")]
struct Event {
    user_id: i64,
}

fn main() {}
