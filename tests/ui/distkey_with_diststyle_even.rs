use redtrack::RedTrackEvent;

#[derive(RedTrackEvent)]
#[redtrack(table = "events", diststyle = "even", distkey = "user_id")]
struct Event {
    user_id: i64,
}

fn main() {}
